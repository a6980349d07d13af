"""Saving a stream's rules at the station and getting them to its edge node.

Each save is stored first (version n+1, author, audit entry: store/rules.py), then published retained at
QoS 1 on `<prefix>/<node>/rules/<stream>` as a `RulesConfig` (an empty retained payload when cleared), on
the aggregator's MQTT connection.  The database is the source of truth and the broker a copy: a version
is marked published once the broker acknowledges it, and whatever is not (the broker was down, the
station restarted in between) is published again by `sync`, which runs whenever the aggregator
(re)connects and every minute.  The edge reports the version it runs in its stream status.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from ground_station.rules.changes import describe_changes
from ground_station.store import RulesVersion, Store
from smarteye.config.mqtt import MqttConfig
from smarteye.wire.messages import RulesConfig
from smarteye.wire.rules import RuleSet
from smarteye.wire.topics import rules_topic

log = logging.getLogger(__name__)

DEFAULT_PREFIX: str = MqttConfig.model_fields["topic_prefix"].default
SYNC_INTERVAL_S = 60.0


class RetainedPublisher(Protocol):
    """The aggregator's side of it: a retained QoS-1 publish, True once the broker acknowledged it."""

    def publish_retained(self, topic: str, payload: bytes, timeout: float = 5.0) -> bool: ...


@dataclass(frozen=True, slots=True)
class SavedRules:
    version: RulesVersion
    published: bool  # the broker has it (retained); False: stored, and published by the next sync


def rules_payload(version: RulesVersion) -> bytes:
    """The retained message of a version: its RulesConfig, or empty (cleared: the node's YAML rules run)."""
    if version.rules is None:
        return b""
    config = RulesConfig(node=version.node, stream=version.stream, rules=version.rules, author=version.author,
                         time=version.time)  # fmt: skip
    return config.model_dump_json().encode()


class RulesPush:
    def __init__(
        self,
        store: Store,
        topic_prefix: str = DEFAULT_PREFIX,
        publisher: RetainedPublisher | None = None,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self.store = store
        self.topic_prefix = topic_prefix
        self.publisher = publisher
        self.publish_timeout_s = publish_timeout_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one publish at a time: versions of a stream reach the broker in order
        self._thread: threading.Thread | None = None

    def save(
        self, node: str, stream: str, rules: RuleSet | None, author: str, base_version: int | None = None
    ) -> SavedRules:
        """Store `rules` (None: clear) as the stream's next version and publish it (raises
        store.rules.VersionConflictError if `base_version` is not the current one)."""
        version = self.store.save_rules(node, stream, rules, author, describe_changes, base_version)
        return SavedRules(version, self.publish(version))

    def publish(self, version: RulesVersion) -> bool:
        """Publish one version retained; True (and marked published) once the broker acknowledged it."""
        if self.publisher is None:
            return False
        topic = rules_topic(self.topic_prefix, version.node, version.stream)
        with self._lock:
            current = self.store.current_rules(version.node, version.stream)
            if current is not None and current.version != version.version:
                return False  # a newer version was saved meanwhile: that one is published, not this one
            try:
                acked = self.publisher.publish_retained(topic, rules_payload(version), self.publish_timeout_s)
            except Exception as error:
                log.warning("rules %s/%s v%d not published: %s", version.node, version.stream, version.version, error)
                return False
            if acked:
                self.store.mark_rules_published(version.node, version.stream, version.version)
        return acked

    def sync(self) -> int:
        """Publish every stream's newest version the broker does not have yet; returns how many were."""
        published = 0
        for version in self.store.latest_rules(unpublished_only=True):
            published += self.publish(version)
        return published

    # ------------------------------------------------------------------ background sync

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rules-sync", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Sync soon (called on the aggregator's network thread when it connects: never blocks)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SYNC_INTERVAL_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if count := self.sync():
                    log.info("rules: %d stream(s) published after a (re)connect or an earlier failure", count)
            except Exception as error:  # the database is away: next time
                log.warning("rules sync failed: %s", error)
                time.sleep(1.0)
