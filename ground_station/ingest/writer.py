"""The writer thread: drains the hand-off in batches, one transaction each, and acknowledges a
batch's messages only after its commit.

Acknowledging after the commit is what makes the store durable: a crash between receipt and commit
leaves the messages unacknowledged in the broker session, and the broker sends them again.  The
re-sent copies, and any QoS-1 duplicate, are absorbed by the `events.id` (and `alert_messages.id`)
primary key.  A new alert message's webhook deliveries are written in the same transaction, and the
webhook workers are only woken after it: the writer never waits for a receiver.

An ack goes only to the connection its message came in on (`acknowledge(connection, items)` sends
nothing for an earlier connection: see loop.py for why).  While stopping, what is still written is
no longer acknowledged either: the connection is gone, and the broker re-sends it next time.

After the acks, `confirm(batch)` tells the edge nodes which of their messages the station is finished
with (stored, duplicate or refused as bad data): the broker's own copy may die with it, so an edge keeps a
message until this end-to-end confirmation (smarteye.wire.confirm).  A confirmation that cannot be sent
is logged and forgotten: the edge sends the message again later, and storage never waits for it.

Outages and everything else differ.  Only a store outage (connection lost or refused, disk full,
database locked: `is_outage`) retries the same batch with backoff, holding the acks (and so, through
the receive maximum, the broker) back.  Any other failure belongs to some message of the batch (the
database refuses its data, an integer SQLite cannot hold raises OverflowError, a lone surrogate
cannot be encoded, …): the batch is written again one message at a time, and each message that still
fails is counted by reason (`rejected`: its data; `internal`: a bug) and skipped, never retried: one
message must never stop the storage of all the others (issue 12).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from operator import attrgetter

import sqlalchemy as sa

from ground_station.config import GroundStationConfig
from ground_station.ingest.handoff import Handoff, Item
from ground_station.ingest.malformed import INTERNAL, REJECTED, SCHEMA, WRONG_TOPIC, MalformedCounter
from ground_station.ingest.retention import RetentionSchedule
from ground_station.snapshots import ForeignSnapshotError, SnapshotError, Snapshots
from ground_station.store import Store
from ground_station.webhooks import WebhookDispatcher
from smarteye.wire.messages import Alert, DetectionEvent, NodeAvailability, StreamStatus, ZoneCounts
from smarteye.wire.topics import alert_snapshot_topic, clip_topic, snapshot_topic

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, str, str | None, str], None]  # (kind, node, stream, payload JSON)


_OUTAGES = (
    sa.exc.OperationalError,  # server gone, connection refused; SQLite: locked, disk full, I/O error
    sa.exc.InterfaceError,  # the driver's connection is closed
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # no pooled connection in time
    OSError,
)
# What a message's own data makes fail: the database's verdict, or its conversion on the way there.
_DATA_ERRORS = (sa.exc.StatementError, ArithmeticError, ValueError, TypeError, LookupError)


def is_outage(error: BaseException) -> bool:
    """True if the store is unreachable or full (retrying the same rows later can help); anything
    else is the fault of some message of the batch, which is isolated and skipped."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _OUTAGES)


def failure_reason(error: BaseException) -> str:
    """The malformed-message reason a per-message failure is counted under."""
    return REJECTED if isinstance(error, _DATA_ERRORS) else INTERNAL


class Writer:
    """Stores what the network thread hands over; counters are written by this thread only."""

    def __init__(
        self,
        config: GroundStationConfig,
        store: Store,
        snapshots: Snapshots | None,
        handoff: Handoff,
        acknowledge: Callable[[int, Sequence[Item]], bool],
        malformed: MalformedCounter,
        on_message: MessageHandler | None,
        on_error: Callable[[str], None],
        webhooks: WebhookDispatcher | None = None,
        confirm: Callable[[Sequence[Item]], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.snapshots = snapshots
        self._handoff = handoff
        self._acknowledge = acknowledge
        self._malformed = malformed
        self._on_message = on_message
        self._on_error = on_error
        self._webhooks = webhooks
        self._confirm = confirm
        self.confirm_errors = 0
        self._retention = RetentionSchedule(config, store, snapshots)
        self.processed = 0  # items taken off the hand-off and finished
        self.events = 0  # valid event messages handed to the store
        self.stored = 0  # of those, new
        self.states = 0  # status and availability messages
        self.cleared = 0
        self.alerts = 0  # valid alert messages handed to the store
        self.alerts_stored = 0  # of those, new
        self.counts = 0  # zone counts messages
        self.alert_media = 0  # alert snapshots and clips handed to the store (refused ones are malformed)
        self.batches = 0
        self.db_errors = 0
        self._traced: set[type[BaseException]] = set()
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ground-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def abandon(self) -> None:
        """Stop retrying and end: what is not yet written stays unacknowledged (re-sent next time)."""
        self._abandoned.set()

    def _run(self) -> None:
        size = self.config.batch_size
        while not self._abandoned.is_set():
            if (error := self._retention.run_if_due()) is not None:
                self._failed(error)
            batch = self._handoff.get(size, timeout=0.5)
            if batch is None:  # stopping, and everything handed over is written
                break
            if not batch:
                continue
            if len(batch) < size and self.config.batch_linger_s > 0 and not self._handoff.closed:
                # Under load, one short pause turns many small transactions (each with a fixed
                # cost) into a few large ones; one sleep, not a wake-up per arriving message.
                time.sleep(self.config.batch_linger_s)
                batch += self._handoff.get(size - len(batch), timeout=0) or []
            self._write_batch(batch)

    def _failed(self, text: str) -> None:
        self.db_errors += 1
        self._on_error(text)

    def _write_batch(self, batch: list[Item]) -> None:
        """Store a batch (retrying while the database is unreachable), then acknowledge it."""
        delay = 0.5
        while True:
            try:
                self._store_items(batch)
                break
            except Exception as error:
                if not is_outage(error):
                    try:
                        self._store_one_by_one(batch)
                        break
                    except Exception as other:
                        error = other
                text = f"database: {type(error).__name__}: {error}".splitlines()[0]
                self._failed(text)
                if self._abandoned.is_set():
                    return
                log.warning("aggregator cannot write to the database (%s); retrying in %.1f s", text, delay)
                if self._abandoned.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
        self._acknowledge_batch(batch)
        self._confirm_batch(batch)
        self.batches += 1
        self.processed += len(batch)

    def _store_items(self, batch: list[Item]) -> None:
        received = [item.received for item in batch if item.received is not None]
        cleared = [item.cleared for item in batch if item.cleared is not None]
        media = [item.media for item in batch if item.media is not None]
        streams = [(c.node, c.stream) for c in cleared if c.stream is not None]
        nodes = [c.node for c in cleared if c.stream is None]
        targets = self._webhooks.targets if self._webhooks is not None else None
        result = self.store.write_batch(received, streams, nodes, media, targets)
        if result.new_alert_messages and self._webhooks is not None:
            self._webhooks.wake()
        if self.snapshots is not None:
            for item in batch:
                if item.snapshot is not None:
                    event_id, node, stream, jpeg = item.snapshot
                    try:
                        self.snapshots.put(event_id, node, stream, jpeg)  # idempotent: a retried batch is fine
                    except SnapshotError as error:  # checked on receipt already; counted, not retried
                        topic = snapshot_topic(self.config.mqtt.topic_prefix, node, stream, event_id)
                        reason = WRONG_TOPIC if isinstance(error, ForeignSnapshotError) else SCHEMA
                        self._malformed.count(reason, topic, f"snapshot: {error}")
        prefix = self.config.mqtt.topic_prefix
        for refused in result.refused_media:
            topic = (alert_snapshot_topic if refused.kind == "snapshot" else clip_topic)(
                prefix, refused.node, refused.stream, refused.alert_id
            )
            self._malformed.count(WRONG_TOPIC, topic, f"{refused.kind} for an alert of another node or stream")
        unpushed = set(result.new_alert_messages)
        kinds = {DetectionEvent: 0, StreamStatus: 0, NodeAvailability: 0, Alert: 0, ZoneCounts: 0}
        for r in received:
            message = r.message
            kinds[type(message)] += 1
            if isinstance(message, Alert):  # pushed once: a redelivery is not a new alert message
                if message.id not in unpushed:
                    continue
                unpushed.discard(message.id)
            if self._on_message is not None:
                self._on_message(message.kind, message.node, getattr(message, "stream", None), r.payload)
        self.events += kinds[DetectionEvent]
        self.stored += result.new_events
        self.states += kinds[StreamStatus] + kinds[NodeAvailability]
        self.cleared += len(cleared)
        self.alerts += kinds[Alert]
        self.alerts_stored += len(result.new_alert_messages)
        self.counts += kinds[ZoneCounts]
        self.alert_media += len(media) - len(result.refused_media)

    def _store_one_by_one(self, batch: list[Item]) -> None:
        """A batch that failed for something other than an outage: store what can be stored, count the
        rest (an outage meanwhile is raised, and the whole batch retried: stored rows are absorbed)."""
        for item in batch:
            try:
                self._store_items([item])
            except Exception as error:
                if is_outage(error):
                    raise
                reason = failure_reason(error)
                if reason == INTERNAL and type(error) not in self._traced:  # a traceback once per kind of bug
                    self._traced.add(type(error))
                    log.error("bug while storing a message; skipped", exc_info=error)
                self._malformed.count(reason, _item_topic(self.config.mqtt.topic_prefix, item),
                                      f"{type(error).__name__}: {error}".splitlines()[0][:300])  # fmt: skip

    def _confirm_batch(self, batch: list[Item]) -> None:
        """Confirm the committed batch to its edge nodes; a failure is counted and logged (the first, then
        every 1000th): it must never stop storage."""
        if self._confirm is None:
            return
        try:
            self._confirm(batch)
        except Exception as error:
            self.confirm_errors += 1
            if self.confirm_errors % 1000 == 1:
                log.warning("cannot confirm stored messages to the edge nodes (%s: %s); they will be sent again",
                            type(error).__name__, error)  # fmt: skip

    def _acknowledge_batch(self, batch: list[Item]) -> None:
        """Each run of items from one connection goes to `acknowledge`, which sends only the current one's."""
        for connection, items in itertools.groupby(batch, key=attrgetter("connection")):
            self._acknowledge(connection, list(items))


def _item_topic(prefix: str, item: Item) -> str:
    """Where the item came from, for the log line (the topic itself is not kept)."""
    if item.received is not None:
        message = item.received.message
        return f"{prefix}/{message.node}/{message.kind}/{getattr(message, 'stream', '')}".rstrip("/")
    if item.snapshot is not None:
        return snapshot_topic(prefix, item.snapshot.node, item.snapshot.stream, item.snapshot.event_id)
    if item.media is not None:
        media = item.media
        return (alert_snapshot_topic if media.kind == "snapshot" else clip_topic)(
            prefix, media.node, media.stream, media.alert_id
        )
    return f"{prefix}/(cleared state)"
