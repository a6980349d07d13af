"""The aggregator: subscribes to every edge node over MQTT and writes what arrives into the store.

Threads and hand-off:
* paho's network thread only parses and validates (edge.messages models) and puts the result on
  a bounded queue; if the queue is full it blocks there, so nothing is ever dropped in between.
* a writer thread drains the queue in batches, one transaction each, and only after the commit
  acknowledges (PUBACK) the batch's messages.  Acknowledging after the commit is what makes the
  store durable: a crash between receipt and commit leaves the messages unacknowledged in the
  broker session (MQTT 5, clean start off, session expiry), and the broker sends them again.  The
  re-sent copies, and any QoS-1 duplicate, are absorbed by the `events.id` primary key.
* the broker never has more than `queue_max` (≤ 65535, the MQTT 5 receive maximum) unacknowledged
  messages out to us, which is the real backpressure: a slow database slows the broker's sending,
  not our socket reads, so keepalives keep flowing.

Acknowledgements must go to the connection the message came in on: after a reconnect the broker
re-sends unacknowledged messages and may reuse their packet ids, so an old-connection ack could
confirm a different, not-yet-stored message.  Each queued item carries its connection number and
is acknowledged only if that connection is still the current one.
"""

from __future__ import annotations

import logging
import queue
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ValidationError

from edge.messages import MESSAGE_MODELS, DetectionEvent, NodeAvailability, StreamStatus, Telemetry
from ground_station.config import GroundStationConfig
from ground_station.snapshots import SnapshotError, Snapshots
from ground_station.store import Received, Store

log = logging.getLogger(__name__)

MALFORMED_LOG_INTERVAL_S = 60.0
MAX_RECEIVE_MAXIMUM = 65535  # MQTT 5 limit on messages in flight to one client

# Reasons a message is not stored (keys of AggregatorStats.malformed).
BAD_JSON = "bad_json"  # not JSON (or empty, on the events topic)
UNKNOWN_KIND = "unknown_kind"  # `kind` is none of event/status/availability
WRONG_TOPIC = "wrong_topic"  # a kind, node or stream that does not belong on this topic
SCHEMA = "schema"  # JSON, but not a valid message of its kind
REJECTED = "rejected"  # the database refused it (e.g. text it cannot store)
INTERNAL = "internal"  # a bug while handling it; logged with a traceback

_TOPIC_KINDS = {"events": DetectionEvent, "status": StreamStatus}


def _drop_disconnected_noise(record: logging.LogRecord) -> bool:
    # paho 2.2 runs its loop once more after a requested disconnect and logs this at ERROR; we
    # never call into paho's loop while disconnected otherwise, so the line is always benign here.
    return not str(record.msg).startswith("Client is not connected.")


_paho_log = logging.getLogger("ground_station.aggregator.paho")
_paho_log.addFilter(_drop_disconnected_noise)


class _Item(NamedTuple):
    """What the network thread hands to the writer: a message, a cleared state, or a bare ack."""

    received: Received | None
    cleared: tuple[str, str | None] | None  # (node, stream) or (node, None) when retained state was cleared
    mid: int
    qos: int
    connection: int


class _Malformed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AggregatorStats:
    """Counters since start.  Once idle: received = events + states + cleared + malformed_total."""

    received: int
    events: int  # valid event messages handed to the store
    stored: int  # of those, new (not already stored)
    duplicates: int  # of those, already stored (QoS-1 redeliveries)
    states: int  # status and availability messages
    cleared: int = 0  # empty retained messages: a node's or stream's state removed from the broker
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


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _validation_reason(error: ValidationError) -> tuple[str, str]:
    """Map a pydantic error to (reason, one-line detail)."""
    errors = error.errors(include_url=False)
    for err in errors:
        if err["type"] == "json_invalid":
            return BAD_JSON, err["msg"]
        if err["loc"] == ("kind",) and err["type"] == "literal_error":
            kind = err.get("input")
            if isinstance(kind, str) and kind in MESSAGE_MODELS:
                return WRONG_TOPIC, f"a {kind!r} message does not belong on this topic"
            return UNKNOWN_KIND, f"unknown kind {kind!r}"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return SCHEMA, f"{where}: {first['msg']}{more}"


class MessageParser:
    """Topic + payload → validated message (or _Malformed).  Pure: no I/O, no shared state."""

    def __init__(self, topic_prefix: str) -> None:
        self.prefix = topic_prefix + "/"

    def parse(self, topic: str, payload: bytes, received_time: float) -> Received | tuple[str, str | None]:
        """A Received message, or (node, stream|None) for an empty retained message (state cleared)."""
        if not topic.startswith(self.prefix):
            raise _Malformed(WRONG_TOPIC, "outside the topic prefix")
        parts = topic[len(self.prefix) :].split("/")
        if len(parts) == 3 and parts[1] in _TOPIC_KINDS:
            node, section, stream = parts
            model: type[BaseModel] = _TOPIC_KINDS[section]
        elif len(parts) == 2 and parts[1] == "availability":
            node, section, stream = parts[0], parts[1], None
            model = NodeAvailability
        else:
            raise _Malformed(WRONG_TOPIC, "not an events, status or availability topic")
        if not payload:
            if section == "events":
                raise _Malformed(BAD_JSON, "empty payload")
            return node, stream
        try:
            message = model.model_validate_json(payload)
        except ValidationError as error:
            raise _Malformed(*_validation_reason(error)) from None
        if message.node != node or (stream is not None and message.stream != stream):  # type: ignore[attr-defined]
            raise _Malformed(WRONG_TOPIC, "node or stream in the message differ from the topic")
        # JSON may carry \u0000, which PostgreSQL text cannot store; the check is rare (cheap byte test first).
        if b"\\u0000" in payload and _has_nul(message.model_dump()):
            raise _Malformed(SCHEMA, "text contains a NUL character")
        return Received(message, received_time, payload.decode("utf-8"))  # type: ignore[arg-type]


def _is_data_error(error: BaseException) -> bool:
    """True if the database refused the data itself (retrying the same rows cannot help)."""
    return isinstance(error, sa.exc.DataError | sa.exc.IntegrityError)


class Aggregator:
    """Subscribes to events, status and availability of every node and stores them (see module docstring)."""

    def __init__(
        self,
        config: GroundStationConfig,
        store: Store | None = None,
        snapshots: Snapshots | None = None,
        on_message: Callable[[str, str, str | None, str], None] | None = None,
    ) -> None:
        """`snapshots`: also receive and keep event snapshots. `on_message(kind, node, stream, payload)`
        is called for every valid message once it is stored (telemetry: once it is validated), e.g. to
        push it live to browsers."""
        self.config = config
        self.snapshots = snapshots
        self.on_message = on_message
        self._own_store = store is None
        self.store = store if store is not None else Store(config.database_url)
        mq = config.mqtt
        self.client_id = mq.client_id or f"smarteye-ground-{socket.gethostname()}"
        self._parser = MessageParser(mq.topic_prefix)
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=config.queue_max)
        self._receive_maximum = min(config.queue_max, MAX_RECEIVE_MAXIMUM)

        # Connection state shared by the network thread (writes) and the writer (acks); see module doc.
        self._ack_lock = threading.Lock()
        self._connection = 0
        self._connected = False

        # Counters: each is written by one thread only.
        self._received = 0  # network thread
        self._enqueued = 0  # network thread
        self._processed = 0  # writer: items taken off the queue and finished
        self._events = 0
        self._stored = 0
        self._states = 0
        self._cleared = 0
        self._batches = 0
        self._db_errors = 0
        self._malformed: Counter[str] = Counter()
        self._malformed_lock = threading.Lock()
        self._malformed_logged: dict[str, float] = {}
        self._last_error: str | None = None

        self._subscribed = threading.Event()  # SUBACK received on the current connection
        self._unsubscribed = threading.Event()  # UNSUBACK of the shared subscription (when stopping)
        self._stop_writer = threading.Event()
        self._stopping = False
        self._started = False
        self._stopped = False
        self._client = self._make_client()
        self._writer = threading.Thread(target=self._write_loop, name="ground-writer", daemon=True)

    # ------------------------------------------------------------------ setup

    def _make_client(self) -> mqtt.Client:
        mq = self.config.mqtt
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.enable_logger(_paho_log)
        client.suppress_exceptions = True  # a bug in a callback must not kill the network thread
        if mq.username is not None:
            secret = mq.password.get_secret_value() if mq.password is not None else None
            client.username_pw_set(mq.username, secret)
        if mq.use_tls:
            client.tls_set_context(self.config.mqtt.ssl_context())
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = lambda *args: self._unsubscribed.set()
        return client

    def subscriptions(self) -> list[str]:
        """Topic filters.  Only events are shared: retained state is never sent on a shared
        subscription (MQTT 5), and every instance keeping it current costs little."""
        prefix = self.config.mqtt.topic_prefix
        events = f"{prefix}/+/events/+"
        if self.config.share_group:
            events = f"$share/{self.config.share_group}/{events}"
        topics = [events, f"{prefix}/+/status/+", f"{prefix}/+/availability", f"{prefix}/+/telemetry/+"]
        if self.snapshots is not None:
            snapshots = f"{prefix}/+/snapshots/+/+"
            topics.append(f"$share/{self.config.share_group}/{snapshots}" if self.config.share_group else snapshots)
        return topics

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried) and start the writer."""
        if self._started:
            raise RuntimeError("an Aggregator can be started once; create a new one")
        self._started = True
        mq = self.config.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._writer.start()
        self._client.connect_async(mq.host, mq.port, mq.keepalive_s, clean_start=False, properties=props)
        self._client.loop_start()
        log.info(
            "aggregator %s: MQTT %s, store %s (schema v%d)%s",
            self.client_id,
            mq.redacted_url,
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
        if not self._started:
            if self._own_store:
                self.store.close()
            return
        deadline = time.monotonic() + timeout
        if self.config.share_group and self._connected:
            self._unsubscribed.clear()
            self._client.unsubscribe(self.subscriptions()[0])
            self._unsubscribed.wait(max(0.0, min(2.0, deadline - time.monotonic())))
        target = self._enqueued
        while self._processed < target and self._writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        # Whatever arrived after `target` is stored too, but not acknowledged: the broker re-sends it
        # next time and the primary key drops the copy.
        try:
            self._queue.put(None, timeout=max(0.1, deadline - time.monotonic()))
        except queue.Full:  # the writer is stuck (database down): give up on the rest
            self._stop_writer.set()
        self._writer.join(max(0.1, deadline - time.monotonic()))
        if self._writer.is_alive():
            log.warning(
                "aggregator writer did not finish within %.0f s; unacknowledged messages will be re-sent", timeout
            )
            self._stop_writer.set()
            self._writer.join(5)
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Aggregator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stats(self) -> AggregatorStats:
        with self._malformed_lock:
            malformed = dict(self._malformed)
        return AggregatorStats(
            received=self._received,
            events=self._events,
            stored=self._stored,
            duplicates=self._events - self._stored,
            states=self._states,
            cleared=self._cleared,
            malformed=malformed,
            queue_depth=self._queue.qsize(),
            connected=self._connected,
            subscribed=self._subscribed.is_set(),
            connections=self._connection,
            batches=self._batches,
            db_errors=self._db_errors,
            last_error=self._last_error,
        )

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until connected and subscribed (messages published from then on reach us)."""
        return self._subscribed.wait(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything received so far is stored (for tests and tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._processed >= self._enqueued and self._queue.empty():
                return True
            time.sleep(0.01)
        return False

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._last_error = f"connection refused: {reason_code}"
            log.warning("MQTT broker %s refused connection: %s; retrying", self.config.mqtt.redacted_url, reason_code)
            return
        with self._ack_lock:
            self._connection += 1
            self._connected = True
        self._subscribed.clear()
        self._last_error = None
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.subscriptions()])
        log.info(
            "aggregator connected to %s as %s (%s session)",
            self.config.mqtt.redacted_url,
            self.client_id,
            "resumed" if flags.session_present else "new",
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [
            f"{topic}: {code}"
            for topic, code in zip(self.subscriptions(), reason_codes, strict=False)
            if code.is_failure
        ]
        if refused:
            self._last_error = "subscription refused: " + "; ".join(refused)
            log.error("aggregator: broker refused subscriptions: %s", "; ".join(refused))
            return
        self._subscribed.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        error = sys.exc_info()[1]
        self._last_error = f"{type(error).__name__}: {error}" if error else "connect failed"
        log.warning("MQTT broker %s unreachable (%s); retrying", self.config.mqtt.redacted_url, self._last_error)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            was_connected, self._connected = self._connected, False
        self._subscribed.clear()
        if was_connected and reason_code.value != 0:
            self._last_error = f"disconnected: {reason_code}"
            log.warning("aggregator lost MQTT connection (%s); reconnecting", reason_code)

    def _side_channel(self, topic: str, payload: bytes) -> bool:
        """Telemetry (validated, pushed live, not stored) and snapshots (stored beside the events).
        True when the topic was one of them; bad payloads are counted like any malformed message."""
        parts = topic.removeprefix(self.config.mqtt.topic_prefix + "/").split("/")
        if len(parts) == 3 and parts[1] == "telemetry":
            message = Telemetry.model_validate_json(payload)  # ValidationError → counted by the caller
            if self.on_message is not None and payload:
                self.on_message("telemetry", message.node, message.stream, payload.decode())
            return True
        if len(parts) == 4 and parts[1] == "snapshots" and self.snapshots is not None:
            node, _, stream, event_id = parts
            try:
                self.snapshots.put(event_id, node, stream, payload)
            except SnapshotError as error:
                raise _Malformed(SCHEMA, f"snapshot: {error}") from None
            return True
        return False

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._received += 1
        received: Received | None = None
        cleared: tuple[str, str | None] | None = None
        try:
            handled = self._side_channel(msg.topic, msg.payload)
        except ValidationError as error:
            reason, detail = _validation_reason(error)
            self.count_malformed(reason, msg.topic, detail)
            handled = True
        except _Malformed as bad:
            self.count_malformed(bad.reason, msg.topic, bad.detail)
            handled = True
        if handled:  # a bare ack, so acknowledgements still go out in arrival order
            if self._put(_Item(None, None, msg.mid, msg.qos, self._connection)):
                self._enqueued += 1
            return
        try:
            parsed = self._parser.parse(msg.topic, msg.payload, time.time())
            if isinstance(parsed, Received):
                received = parsed
            else:
                cleared = parsed
        except _Malformed as bad:
            self.count_malformed(bad.reason, msg.topic, bad.detail)
        except Exception as error:  # a bug: never let it stall the message in flight
            log.exception("aggregator failed to handle a message on %s", msg.topic)
            self.count_malformed(INTERNAL, msg.topic, repr(error))
        # Malformed messages are queued too (as bare acks): acks go out in the order messages came in.
        if self._put(_Item(received, cleared, msg.mid, msg.qos, self._connection)):
            self._enqueued += 1

    def _put(self, item: _Item) -> bool:
        """Blocking put: a full queue stops reading from the broker instead of dropping.

        Only when stopping (or if the writer died) is the item let go: it was not acknowledged, so
        the broker sends it again on the next connection of this session.
        """
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                if self._stopping or not self._writer.is_alive():
                    return False

    def count_malformed(self, reason: str, topic: str, detail: str) -> None:
        """Count a rejected message; log it at most once a minute per reason (one line)."""
        now = time.monotonic()
        with self._malformed_lock:
            self._malformed[reason] += 1
            count = self._malformed[reason]
            last = self._malformed_logged.get(reason)
            if last is not None and now - last < MALFORMED_LOG_INTERVAL_S:
                return
            self._malformed_logged[reason] = now
        log.warning("dropped malformed message on %s: %s: %s (%d so far)", topic, reason, detail, count)

    # ------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        next_purge = time.monotonic()
        stopping = False
        while not stopping and not self._stop_writer.is_set():
            if time.monotonic() >= next_purge:
                self._purge()
                next_purge = time.monotonic() + self.config.retention_interval_s
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            batch: list[_Item] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
                stopping = self._drain_into(batch)
                if not stopping and len(batch) < self.config.batch_size and self.config.batch_linger_s > 0:
                    # Under load, one short pause turns many small transactions (each with a fixed
                    # cost) into a few large ones; one sleep, not a wake-up per arriving message.
                    time.sleep(self.config.batch_linger_s)
                    stopping = self._drain_into(batch)
            if batch:
                self._write_batch(batch)
        # Stopping: store whatever is still queued (it will not be acknowledged; see stop()).
        while not self._stop_writer.is_set():
            batch = []
            self._drain_into(batch)
            if not batch:
                break
            self._write_batch(batch)

    def _drain_into(self, batch: list[_Item]) -> bool:
        """Move queued items into `batch` without waiting, up to batch_size; True if the stop marker came."""
        while len(batch) < self.config.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _write_batch(self, batch: list[_Item]) -> None:
        """Store a batch (retrying while the database is unreachable), then acknowledge it."""
        delay = 0.5
        while True:
            try:
                self._store_items(batch)
                break
            except Exception as error:
                if _is_data_error(error):
                    try:
                        self._store_one_by_one(batch)
                        break
                    except Exception as other:
                        error = other
                self._db_errors += 1
                self._last_error = f"database: {type(error).__name__}: {error}".splitlines()[0]
                if self._stop_writer.is_set():
                    return
                log.warning("aggregator cannot write to the database (%s); retrying in %.1f s", self._last_error, delay)
                if self._stop_writer.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
        self._ack(batch)
        self._batches += 1
        self._processed += len(batch)

    def _store_items(self, batch: list[_Item]) -> None:
        received = [item.received for item in batch if item.received is not None]
        streams = [(n, s) for n, s in (item.cleared for item in batch if item.cleared) if s is not None]
        nodes = [n for n, s in (item.cleared for item in batch if item.cleared) if s is None]
        new = self.store.write(received, cleared_streams=streams, cleared_nodes=nodes)
        if self.on_message is not None:
            for r in received:
                self.on_message(r.message.kind, r.message.node, getattr(r.message, "stream", None), r.payload)
        events = sum(1 for r in received if isinstance(r.message, DetectionEvent))
        self._events += events
        self._stored += new
        self._states += len(received) - events
        self._cleared += len(streams) + len(nodes)

    def _store_one_by_one(self, batch: list[_Item]) -> None:
        """A batch the database refused for its data: store what it accepts, count the rest."""
        for item in batch:
            try:
                self._store_items([item])
            except Exception as error:
                if not _is_data_error(error):
                    raise
                topic = "(database)"
                if item.received is not None:
                    message = item.received.message
                    topic = f"{message.node}/{message.kind}"
                self.count_malformed(REJECTED, topic, f"{type(error).__name__}: {error}".splitlines()[0])

    def _ack(self, batch: list[_Item]) -> None:
        client = self._client
        with self._ack_lock:
            if not self._connected:
                return
            current = self._connection
            for item in batch:
                if item.qos > 0 and item.connection == current:
                    client.ack(item.mid, item.qos)

    def _purge(self) -> None:
        cfg = self.config
        if cfg.retention_days is None and cfg.retention_max_events is None:
            return
        max_age = cfg.retention_days * 86400 if cfg.retention_days is not None else None
        try:
            result = self.store.purge(max_age_s=max_age, max_events=cfg.retention_max_events)
            if self.snapshots is not None and max_age is not None:
                self.snapshots.purge(older_than=time.time() - max_age)
        except Exception as error:
            self._db_errors += 1
            self._last_error = f"retention: {type(error).__name__}: {error}".splitlines()[0]
            log.warning("aggregator retention pass failed: %s", self._last_error)
            return
        if result.total:
            log.info(
                "retention deleted %d event messages (%d by age, %d by count)",
                result.total,
                result.by_age,
                result.by_count,
            )
