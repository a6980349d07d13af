"""Messages that are not stored, and why: one bad message is counted by reason and skipped, and never
stops the others (it is still acknowledged, in its turn, so the broker does not send it again).

The reasons are the keys of `AggregatorStats.malformed`.  A data error (the message, or the database's
verdict on it) is counted here; an outage (broker or database unreachable) is not: it is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0  # one log line per reason at most this often

BAD_JSON = "bad_json"  # not JSON (or empty, on the events topic)
UNKNOWN_KIND = "unknown_kind"  # `kind` is none of event/status/availability
WRONG_TOPIC = "wrong_topic"  # a kind, node or stream that does not belong on this topic
SCHEMA = "schema"  # JSON, but not a valid message of its kind
REJECTED = "rejected"  # the database refused it (e.g. text it cannot store)
INTERNAL = "internal"  # a bug while handling it; logged with a traceback


class Malformed(Exception):
    """A message that will not be stored: `reason` (one of the above) and a one-line `detail`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class MalformedCounter:
    """Counts rejected messages by reason (from the network and the writer thread); logs each reason
    at most once a minute, one line naming the topic, so a flood of bad messages cannot flood the log."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._logged: dict[str, float] = {}

    def count(self, reason: str, topic: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts[reason] += 1
            count = self._counts[reason]
            last = self._logged.get(reason)
            if last is not None and now - last < LOG_INTERVAL_S:
                return
            self._logged[reason] = now
        log.warning("dropped malformed message on %s: %s: %s (%d so far)", topic, reason, detail, count)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
