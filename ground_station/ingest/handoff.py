"""The bounded hand-off from the network thread to the writer, filled a read burst at a time.

Nothing is dropped between the two threads: a full hand-off makes the network thread wait (it stops
reading from the broker) instead.  That wait is short-lived by design: the broker never has more than
`queue_max` unacknowledged messages out to us (MQTT 5 receive maximum, see loop.py), so the real
backpressure is the broker slowing its sending, not our socket reads, and keepalives keep flowing.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import NamedTuple

from ground_station.ingest.parse import Cleared, Snapshot
from ground_station.store import AlertMedia, Received


class Item(NamedTuple):
    """One received PUBLISH for the writer: a message to store, a cleared state, a snapshot, an alert's
    snapshot or clip, or (for a malformed or live-only message) nothing but the ack, so acks go out in the
    order messages came in.
    `connection` is the connection it came in on: the ack may only go there (see writer.py).
    `confirm` is (node, digest) for what an edge node spools, confirmed to it once the batch is committed."""

    received: Received | None
    cleared: Cleared | None
    mid: int
    qos: int
    connection: int
    snapshot: Snapshot | None = None
    media: AlertMedia | None = None
    confirm: tuple[str, bytes] | None = None


class Handoff:
    """Bounded FIFO of items, put a burst at a time.

    queue.Queue takes a lock and notifies a condition per message: a few µs each of the network
    thread, which also validates and holds the GIL the writer needs; here a whole burst goes in with
    one.  The bound counts messages, not bursts: `put` waits while the messages already waiting plus
    the new ones would exceed `maxsize`, unless none are waiting (so a burst larger than the bound
    cannot wait forever).
    """

    def __init__(self, maxsize: int) -> None:
        self._chunks: collections.deque[list[Item]] = collections.deque()
        self._size = 0
        self._maxsize = maxsize
        self._closed = False
        lock = threading.Lock()
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)

    def __len__(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, items: list[Item], timeout: float) -> bool:
        """Append `items` (in order), waiting up to `timeout` s for room; False if there was none."""
        with self._not_full:
            if not self._not_full.wait_for(
                lambda: self._size == 0 or self._size + len(items) <= self._maxsize, timeout
            ):
                return False
            self._chunks.append(items)
            self._size += len(items)
            self._not_empty.notify()
            return True

    def get(self, limit: int, timeout: float) -> list[Item] | None:
        """Up to `limit` of the oldest items, waiting up to `timeout` s for the first ([] if none
        came); None once closed and empty."""
        with self._not_empty:
            if not self._chunks and timeout > 0:
                self._not_empty.wait_for(lambda: self._chunks or self._closed, timeout)
            taken: list[Item] = []
            while self._chunks and len(taken) < limit:
                chunk = self._chunks.popleft()
                room = limit - len(taken)
                if len(chunk) > room:
                    self._chunks.appendleft(chunk[room:])
                    chunk = chunk[:room]
                taken += chunk
            if taken:
                self._size -= len(taken)
                self._not_full.notify()
                return taken
            return None if self._closed else taken

    def close(self) -> None:
        """No more items will come: `get` returns what is left, then None."""
        with self._not_empty:
            self._closed = True
            self._not_empty.notify_all()


class Burst:
    """The network thread's side: the items of the current read burst, handed over in one piece.

    `give_up()` is asked while the hand-off stays full: only when stopping (or if the writer died)
    are the items let go.  They were not acknowledged, so the broker sends them again on the next
    connection of this session.
    """

    def __init__(self, handoff: Handoff, give_up: Callable[[], bool]) -> None:
        self.items: list[Item] = []
        self._handoff = handoff
        self._give_up = give_up

    def __len__(self) -> int:
        return len(self.items)

    def hand_over(self) -> None:
        """Give the writer what this burst read; blocks while the hand-off is full."""
        items = self.items
        if not items:
            return
        self.items = []
        while not self._handoff.put(items, timeout=0.5):
            if self._give_up():
                return
