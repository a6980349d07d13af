"""The aggregator: subscribes to every edge node over MQTT and writes what arrives into the store.

A composition of the ingest parts, each with its own guarantees (see their docstrings):
* loop.py, the network thread: reads the broker in bursts (client.py: the paho fast path), parses
  each PUBLISH (parse.py) and hands the results to the writer a burst at a time (handoff.py), in
  arrival order; malformed messages are counted by reason and skipped (malformed.py), but still
  queued as bare acks.
* writer.py, the writer thread: batches, one transaction each, acks after the commit and only on
  the connection a message came in on; retention passes in between (retention.py).
* the webhook dispatcher (ground_station/webhooks): the writer adds a new alert message's deliveries
  to its transaction and wakes the dispatcher's workers, which POST them on their own threads.
The station also publishes on the aggregator's connection: `publish_retained` (a stream's rules), and
after each committed batch the digests of the edge nodes' messages it is finished with, on
`<prefix>/<node>/stored` (`_confirm`; smarteye.wire.confirm, docs/mqtt.md).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ground_station.config import GroundStationConfig
from ground_station.ingest.handoff import Burst, Handoff, Item
from ground_station.ingest.loop import NetworkLoop
from ground_station.ingest.malformed import INTERNAL, Malformed, MalformedCounter
from ground_station.ingest.parse import Cleared, MessageParser, Snapshot, topic_text
from ground_station.ingest.writer import MessageHandler, Writer
from ground_station.snapshots import Snapshots
from ground_station.store import AlertMedia, Received, Store
from ground_station.webhooks import WebhookDispatcher
from smarteye.wire.confirm import confirmation_payloads, message_digest
from smarteye.wire.topics import (
    ANY,
    Section,
    alert_snapshot_topic,
    alerts_topic,
    availability_topic,
    clip_topic,
    counts_topic,
    events_topic,
    snapshot_topic,
    status_topic,
    stored_topic,
    telemetry_topic,
)

# What an edge node spools and keeps until the station confirms it (edge/outputs/mqtt_publisher.py).
CONFIRMED_SECTIONS = frozenset(
    s.value.encode()
    for s in (Section.EVENTS, Section.SNAPSHOTS, Section.ALERTS, Section.ALERT_SNAPSHOTS, Section.CLIPS, Section.COUNTS)
)
_STORED = Section.STORED.value.encode()
_STORED_SUFFIX = b"/" + _STORED

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AggregatorStats:
    """Counters since start.  Once idle: received = events + states + cleared + alerts + counts +
    alert_media + malformed_total (+ event snapshots and telemetry, which are not counted here)."""

    received: int
    events: int  # valid event messages handed to the store
    stored: int  # of those, new (not already stored)
    duplicates: int  # of those, already stored (QoS-1 redeliveries)
    states: int  # status and availability messages
    cleared: int = 0  # empty retained messages: a node's or stream's state removed from the broker
    alerts: int = 0  # valid alert messages handed to the store
    alerts_stored: int = 0  # of those, new
    counts: int = 0  # zone counts messages
    alert_media: int = 0  # alert snapshots and clips stored (those naming another node's alert are malformed)
    malformed: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    connected: bool = False
    subscribed: bool = False
    connections: int = 0
    batches: int = 0
    db_errors: int = 0
    last_error: str | None = None

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


class Aggregator:
    """Subscribes to events, status and availability of every node and stores them (see module docstring)."""

    def __init__(
        self,
        config: GroundStationConfig,
        store: Store | None = None,
        snapshots: Snapshots | None = None,
        on_message: MessageHandler | None = None,
    ) -> None:
        """`snapshots`: also receive and keep event snapshots. `on_message(kind, node, stream, payload)`
        is called for every valid message once it is stored (telemetry: once it is validated), e.g. to
        push it live to browsers."""
        self.config = config
        self.snapshots = snapshots
        self.on_message = on_message
        self._own_store = store is None
        self.store = store if store is not None else Store(config.database_url)
        self.client_id = config.mqtt.client_id or f"smarteye-ground-{socket.gethostname()}"
        self._parser = MessageParser(
            config.mqtt.topic_prefix, snapshots=snapshots is not None, max_clip_bytes=config.alerts.max_clip_bytes
        )
        self.webhooks = WebhookDispatcher(config.webhooks, self.store)
        self._connect_listeners: list[Callable[[], None]] = []
        self._malformed = MalformedCounter()
        self._received = 0  # network thread; each received message becomes one item for the writer
        self._head = (config.mqtt.topic_prefix + "/").encode()
        self.confirmations = 0  # `stored` messages published (writer thread)
        self._last_error: str | None = None  # the latest trouble, from either thread
        self._started = self._stopped = False
        self._handoff = Handoff(config.queue_max)
        self._burst = Burst(self._handoff, give_up=lambda: self._loop.stopping or not self._writer.is_alive())
        self._loop = NetworkLoop(
            config, self.client_id, self.subscriptions(), self._on_publish, self._burst, self._error, self._connected
        )
        self._writer = Writer(
            config, self.store, snapshots, self._handoff, self._loop.acknowledge, self._malformed, on_message,
            self._error, self.webhooks, self._confirm,
        )  # fmt: skip

    def subscriptions(self) -> list[str]:
        """Topic filters.  Only what is stored once is shared (events, alerts, counts, snapshots and
        clips): retained state is never sent on a shared subscription (MQTT 5), and every instance
        keeping it current costs little."""
        prefix = self.config.mqtt.topic_prefix
        topics = [
            self._shared(events_topic(prefix, ANY, ANY)),
            status_topic(prefix, ANY, ANY),
            availability_topic(prefix, ANY),
            telemetry_topic(prefix, ANY, ANY),
        ]
        if self.snapshots is not None:
            topics.append(self._shared(snapshot_topic(prefix, ANY, ANY, ANY)))
        topics += [
            self._shared(alerts_topic(prefix, ANY, ANY)),
            self._shared(alert_snapshot_topic(prefix, ANY, ANY, ANY)),
            self._shared(clip_topic(prefix, ANY, ANY, ANY)),
            self._shared(counts_topic(prefix, ANY, ANY)),
        ]
        return topics

    def _shared(self, topic_filter: str) -> str:
        group = self.config.share_group
        return f"$share/{group}/{topic_filter}" if group else topic_filter

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried) and start the writer."""
        if self._started:
            raise RuntimeError("an Aggregator can be started once; create a new one")
        self._started = True
        self.webhooks.start()
        self._writer.start()
        self._loop.start()
        log.info(
            "aggregator %s: MQTT %s, store %s (schema v%d)%s",
            self.client_id,
            self.config.mqtt.redacted_url,
            self.config.redacted_database_url,
            self.store.schema_version,
            f", share group {self.config.share_group}" if self.config.share_group else "",
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Store and acknowledge what has arrived, disconnect (the broker keeps the session), stop.

        In a share group the shared subscription is dropped first: Mosquitto keeps handing shares
        to a disconnected member's session, where they would wait until this instance returns.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            deadline = time.monotonic() + timeout
            if self.config.share_group:
                shared = [topic for topic in self.subscriptions() if topic.startswith("$share/")]
                self._loop.unsubscribe(shared, max(0.0, min(2.0, deadline - time.monotonic())))
            target = self._received
            while self._writer.processed < target and self._writer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            self._loop.stop(max(0.1, min(2.0, deadline - time.monotonic())))
            # Whatever arrived after `target` is stored too, but not acknowledged: the broker re-sends
            # it next time and the primary key drops the copy.
            self._handoff.close()
            self._writer.join(max(0.1, deadline - time.monotonic()))
            if self._writer.is_alive():
                log.warning(
                    "aggregator writer did not finish within %.0f s; unacknowledged messages will be re-sent", timeout
                )
                self._writer.abandon()
                self._writer.join(5)
            self.webhooks.stop(max(0.5, min(5.0, deadline - time.monotonic())))
        self._loop.close()
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Aggregator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stats(self) -> AggregatorStats:
        writer, loop = self._writer, self._loop
        return AggregatorStats(
            received=self._received,
            events=writer.events,
            stored=writer.stored,
            duplicates=writer.events - writer.stored,
            states=writer.states,
            cleared=writer.cleared,
            alerts=writer.alerts,
            alerts_stored=writer.alerts_stored,
            counts=writer.counts,
            alert_media=writer.alert_media,
            malformed=self._malformed.counts(),
            queue_depth=len(self._handoff),
            connected=loop.connected,
            subscribed=loop.subscribed.is_set(),
            connections=loop.connection,
            batches=writer.batches,
            db_errors=writer.db_errors,
            last_error=self._last_error,
        )

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until connected and subscribed (messages published from then on reach us)."""
        return self._loop.subscribed.wait(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything received so far is stored (for tests and tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._writer.processed >= self._received:
                return True
            time.sleep(0.01)
        return False

    def publish_retained(self, topic: str, payload: bytes, timeout: float = 5.0) -> bool:
        """Publish a retained QoS-1 message on the aggregator's connection and wait (up to `timeout` s)
        for the broker to acknowledge it; False if not connected or not acknowledged in time."""
        acked = self._loop.publish(topic, payload, retain=True)
        return acked is not None and acked.wait(timeout)

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """`listener()` is called (on the network thread: it must not block) whenever a connection is up."""
        self._connect_listeners.append(listener)

    def _connected(self) -> None:
        for listener in self._connect_listeners:
            try:
                listener()
            except Exception:
                log.exception("aggregator connect listener failed")

    def count_malformed(self, reason: str, topic: str, detail: str) -> None:
        """Count a rejected message; log it at most once a minute per reason (one line)."""
        self._malformed.count(reason, topic, detail)

    # ------------------------------------------------------------------ network thread

    def _error(self, text: str | None) -> None:
        self._last_error = text

    def _confirm(self, batch: Sequence[Item]) -> None:
        """Writer thread, after the commit: per node, the digests of its messages in `batch`, QoS 1, not
        retained, in chunks.  Not waited for: a lost confirmation only makes the edge send again."""
        by_node: dict[str, list[bytes]] = {}
        for item in batch:
            if item.confirm is not None:
                by_node.setdefault(item.confirm[0], []).append(item.confirm[1])
        prefix = self.config.mqtt.topic_prefix
        for node, digests in by_node.items():
            for payload in confirmation_payloads(digests):
                if self._loop.publish(stored_topic(prefix, node), payload, retain=False) is None:
                    return  # not connected: the edges send these again after their timeout
                self.confirmations += 1

    def _confirmable(self, topic: bytes, payload: bytes, qos: int) -> tuple[str, bytes] | None:
        """(node, digest) of a message an edge node keeps until confirmed, else None."""
        if qos != 1 or not topic.startswith(self._head):
            return None
        levels = topic[len(self._head) :].split(b"/", 2)
        if len(levels) < 2 or levels[1] not in CONFIRMED_SECTIONS:
            return None
        try:
            node = levels[0].decode()
        except UnicodeDecodeError:
            return None
        return node, message_digest(topic, payload)

    def _is_own_confirmation(self, topic: bytes) -> bool:
        """A `stored` message is ours (if a subscription ever overlaps it): not the edge's, not malformed."""
        if not topic.startswith(self._head):
            return False
        levels = topic[len(self._head) :].split(b"/")
        return len(levels) == 2 and levels[1] == _STORED

    def _on_publish(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        """Every PUBLISH, in arrival order: parse, then queue it (or a bare ack) for the writer."""
        self._received += 1
        if topic.endswith(_STORED_SUFFIX) and self._is_own_confirmation(topic):
            self._burst.items.append(Item(None, None, mid, qos, self._loop.connection))
            return
        received: Received | None = None
        cleared: Cleared | None = None
        snapshot: Snapshot | None = None
        media: AlertMedia | None = None
        try:
            parsed = self._parser.parse(topic, payload, time.time())
            if isinstance(parsed, Received):
                received = parsed
            elif isinstance(parsed, Cleared):
                cleared = parsed
            elif isinstance(parsed, Snapshot):
                snapshot = parsed
            elif isinstance(parsed, AlertMedia):
                media = parsed
            elif self.on_message is not None:  # telemetry: validated, pushed live, not stored
                self.on_message("telemetry", parsed.node, parsed.stream, parsed.payload)
        except Malformed as bad:
            self._malformed.count(bad.reason, topic_text(topic), bad.detail)
        except Exception as error:  # a bug: never let it stall the message in flight
            log.exception("aggregator failed to handle a message on %s", topic_text(topic))
            self._malformed.count(INTERNAL, topic_text(topic), repr(error))
        # Malformed and live-only messages are queued too (as bare acks): acks go out in the order
        # messages came in.  Handed over to the writer at the end of the read burst.
        confirm = self._confirmable(topic, payload, qos)
        self._burst.items.append(Item(received, cleared, mid, qos, self._loop.connection, snapshot, media, confirm))
