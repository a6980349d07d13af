"""The aggregator: subscribes to every edge node over MQTT and writes what arrives into the store.

Threads and hand-off:
* the network thread (our own loop around paho's socket, see `_network_loop`) only parses and
  validates (smarteye.wire.messages models) and hands the results to the writer through a bounded queue,
  a read burst at a time (`_Handoff`); if the queue is full it blocks there, so nothing is ever
  dropped in between.
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

Receive path (what makes ≥ 10,000 messages/s possible in Python): paho's own loop (`loop_start`)
does one select() and three recv() calls per packet and builds an MQTT 5 `Properties` object, an
`MQTTMessage` and a debug log line for every PUBLISH.  `_FastClient` reads the socket in large
chunks and hands a QoS-1 PUBLISH without properties (what edge nodes send) straight to the
aggregator; everything else (CONNACK, SUBACK, PINGRESP, PUBLISH with properties or QoS 0/2, …)
goes through paho unchanged.  Both hooks are paho internals, checked when the client is made: if a
paho release changes them the aggregator falls back to paho's stock path (slower, same guarantees).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ValidationError

from ground_station.config import GroundStationConfig
from ground_station.snapshots import JPEG_MAGIC, MAX_SNAPSHOT_BYTES, SnapshotError, Snapshots
from ground_station.store import Received, Store
from smarteye.wire.messages import MESSAGE_MODELS, DetectionEvent, NodeAvailability, StreamStatus, Telemetry

log = logging.getLogger(__name__)

MALFORMED_LOG_INTERVAL_S = 60.0
MAX_RECEIVE_MAXIMUM = 65535  # MQTT 5 limit on messages in flight to one client
RECONNECT_MIN_S = 1.0  # first wait before reconnecting; doubles up to RECONNECT_MAX_S, reset on CONNACK
RECONNECT_MAX_S = 30.0
READ_CHUNK = 256 * 1024  # bytes asked of the socket at once (many PUBLISH packets per recv)
READ_BURST = 2000  # packets handled per wake-up before writes (acks) and keepalive get a turn
HANDOFF_CHUNK = 250  # messages read in a burst are handed to the writer at least this often

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
    """What the network thread hands to the writer: a message, a cleared state, a snapshot, or a bare ack."""

    received: Received | None
    cleared: tuple[str, str | None] | None  # (node, stream) or (node, None) when retained state was cleared
    mid: int
    qos: int
    connection: int
    snapshot: tuple[str, str, str, bytes] | None = None  # (event_id, node, stream, jpeg)


class _Handoff:
    """Bounded FIFO from the network thread to the writer, filled a read burst at a time.

    queue.Queue takes a lock and notifies a condition per message: a few µs each of the network
    thread, which also validates and holds the GIL the writer needs; here a whole burst goes in
    with one.  The bound counts messages, not bursts: `put` waits while
    the messages already waiting plus the new ones would exceed `maxsize`, unless none are waiting
    (so a burst larger than the bound cannot wait forever).
    """

    def __init__(self, maxsize: int) -> None:
        self._chunks: collections.deque[list[_Item]] = collections.deque()
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

    def put(self, items: list[_Item], timeout: float) -> bool:
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

    def get(self, limit: int, timeout: float) -> list[_Item] | None:
        """Up to `limit` of the oldest items, waiting up to `timeout` s for the first ([] if none
        came); None once closed and empty."""
        with self._not_empty:
            if not self._chunks and timeout > 0:
                self._not_empty.wait_for(lambda: self._chunks or self._closed, timeout)
            taken: list[_Item] = []
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

    def split(self, topic: str) -> list[str]:
        """The topic's levels after the prefix (raises _Malformed if it lies outside the prefix)."""
        if not topic.startswith(self.prefix):
            raise _Malformed(WRONG_TOPIC, "outside the topic prefix")
        return topic[len(self.prefix) :].split("/")

    def parse(self, topic: str, payload: bytes, received_time: float) -> Received | tuple[str, str | None]:
        """A Received message, or (node, stream|None) for an empty retained message (state cleared)."""
        return self.parse_levels(self.split(topic), payload, received_time)

    def parse_levels(self, parts: list[str], payload: bytes, received_time: float) -> Received | tuple[str, str | None]:
        """`parse` for a topic already split (the network thread splits it once for all checks)."""
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


class _FastClient(mqtt.Client):
    """paho's Client with a buffered socket read and a short path for plain QoS-1 PUBLISH packets.

    * `_sock_recv` (paho reads a packet as recv(1), recv(1…4), recv(rest)) is served from one
      large recv; `would_block` tells the network loop that the socket had nothing more.
    * `ack_many`: a batch's PUBACKs go out in one write instead of one send() each.
    * `_handle_publish`: a QoS-1 PUBLISH without MQTT 5 properties goes to `fast_publish(topic,
      payload, mid, qos)` without paho's per-message Properties/MQTTMessage/log/callback-lookup
      work (manual_ack: the aggregator acknowledges after the commit).  Anything else, or a
      packet the short path cannot read, goes to paho's own handler.
    """

    fast_publish: Callable[[bytes, bytes, int, int], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: Any = None
        self.would_block = False
        self.fast = _paho_internals_ok(self)

    def buffered(self) -> bool:
        """Received bytes not yet handed to paho (the socket may not be readable)."""
        return self._rpos < len(self._rbuf) and self._rsock is self._sock

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self.fast:
            return super()._sock_recv(bufsize)
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf) or self._rsock is not self._sock:  # empty, or left over from an old socket
            try:
                buf = super()._sock_recv(READ_CHUNK)
            except BlockingIOError:
                self.would_block = True
                raise
            self._rsock, self._rbuf, pos = self._sock, buf, 0
            if not buf:  # closed by the broker
                return buf
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK each QoS-1 message in `mids`, in order, as one write (paho: one send() per ack)."""
        if not self.fast:
            for mid in mids:
                self.ack(mid, 1)
        elif mids:
            packet = b"".join(_PUBACK_HEADER + mid.to_bytes(2, "big") for mid in mids)
            self._packet_queue(_PUBACK, packet, 0, 0)

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self.fast_publish
        packet = self._in_packet["packet"]
        command = self._in_packet["command"]
        if handler is None or not self.fast or (command & 0x06) != 0x02:  # QoS 1 only
            return super()._handle_publish()
        try:
            end = 2 + ((packet[0] << 8) | packet[1])
            topic = bytes(packet[2:end])
            mid = (packet[end] << 8) | packet[end + 1]
            start = end + 2
            if self._protocol == mqtt.MQTTv5:
                if packet[start] != 0:  # properties: let paho decode them
                    return super()._handle_publish()
                start += 1
        except IndexError:
            return super()._handle_publish()  # truncated: paho reports the protocol error
        if not topic or mid == 0:
            return super()._handle_publish()
        handler(topic, bytes(packet[start:]), mid, 1)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


_PUBACK = 0x40
_PUBACK_HEADER = bytes((_PUBACK, 2))  # fixed header, remaining length 2 (the packet id): success, no properties


def _paho_internals_ok(client: mqtt.Client) -> bool:
    """True if this paho has the internals _FastClient hooks (checked, not assumed)."""
    packet = getattr(client, "_in_packet", None)
    return (
        isinstance(packet, dict)
        and {"command", "packet"} <= packet.keys()
        and callable(getattr(mqtt.Client, "_sock_recv", None))
        and callable(getattr(mqtt.Client, "_handle_publish", None))
        and callable(getattr(mqtt.Client, "_packet_queue", None))
        and hasattr(client, "_sock")
        and hasattr(client, "_protocol")
    )


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
        self._handoff = _Handoff(config.queue_max)
        self._pending: list[_Item] = []  # network thread: read in this burst, not yet handed over
        self._receive_maximum = min(config.queue_max, MAX_RECEIVE_MAXIMUM)

        # Connection state shared by the network thread (writes) and the writer (acks); see module doc.
        self._ack_lock = threading.Lock()
        self._connection = 0
        self._connected = False

        # Counters: each is written by one thread only.
        self._received = 0  # network thread; each received message becomes one item for the writer
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
        self._stop_network = threading.Event()  # ends the network thread at once (even mid-backoff)
        self._stopping = False
        self._started = False
        self._stopped = False
        self._reconnect_delay: float | None = None  # network thread
        # Wakes the network thread from select(): acks, subscribe/unsubscribe/disconnect from other threads.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._client = self._make_client()
        self._writer = threading.Thread(target=self._write_loop, name="ground-writer", daemon=True)
        self._network = threading.Thread(target=self._network_loop, name="ground-mqtt", daemon=True)

    # ------------------------------------------------------------------ setup

    def _make_client(self) -> _FastClient:
        mq = self.config.mqtt
        client = _FastClient(
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
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = lambda *args: self._unsubscribed.set()
        client.fast_publish = self._on_publish
        # With this set paho never writes to the socket from the calling thread (ack() from the
        # writer, unsubscribe()/disconnect() from stop()): it queues the packet and we get woken.
        client.on_socket_register_write = lambda *args: self._wake()
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
        self._network.start()
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
            self._close_wake()
            if self._own_store:
                self.store.close()
            return
        deadline = time.monotonic() + timeout
        if self.config.share_group and self._connected:
            self._unsubscribed.clear()
            self._client.unsubscribe(self.subscriptions()[0])
            self._unsubscribed.wait(max(0.0, min(2.0, deadline - time.monotonic())))
        target = self._received
        while self._processed < target and self._writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stopping = True
        self._client.disconnect()  # sent by the network thread, which then ends
        if self._client.socket() is None:  # not connected (maybe waiting to reconnect): end it now
            self._stop_network.set()
        self._wake()
        self._network.join(max(0.1, min(2.0, deadline - time.monotonic())))
        if self._network.is_alive():
            self._stop_network.set()
            self._wake()
            self._network.join(2)
        # Whatever arrived after `target` is stored too, but not acknowledged: the broker re-sends it
        # next time and the primary key drops the copy.
        self._handoff.close()
        self._writer.join(max(0.1, deadline - time.monotonic()))
        if self._writer.is_alive():
            log.warning(
                "aggregator writer did not finish within %.0f s; unacknowledged messages will be re-sent", timeout
            )
            self._stop_writer.set()
            self._writer.join(5)
        self._close_wake()
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
            queue_depth=len(self._handoff),
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
            if self._processed >= self._received:
                return True
            time.sleep(0.01)
        return False

    # ------------------------------------------------------------------ network thread

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed (stopped)
            self._wake_w.send(b"\0")

    def _close_wake(self) -> None:
        self._wake_r.close()
        self._wake_w.close()

    def _network_loop(self) -> None:
        """Connect, read, write and keep alive; reconnect with backoff (1 s doubling to 30 s).

        Like paho's loop_forever, through its public pieces (reconnect, socket, loop_read,
        loop_write, want_write, loop_misc), except that one wake-up reads every packet that has
        arrived: paho 2.2's loop_read ignores max_packets and reads one packet per select().
        """
        client = self._client
        first = True
        while not self._stop_network.is_set():
            sock = client.socket()
            if sock is None:
                if self._stopping:
                    break
                if not first:
                    delay = RECONNECT_MIN_S if self._reconnect_delay is None else self._reconnect_delay * 2
                    self._reconnect_delay = delay = min(delay, RECONNECT_MAX_S)
                    if self._stop_network.wait(delay) or self._stopping:
                        break
                first = False
                try:
                    client.reconnect()  # sends CONNECT; CONNACK arrives through loop_read
                except Exception as error:  # refused, unreachable, TLS, DNS: retried after the backoff
                    self._connect_failed(error)
                continue
            try:
                self._network_step(client, sock)
            except Exception:  # a bug must not end the thread; the keepalive will notice a dead link
                log.exception("aggregator network loop error")
                time.sleep(0.1)
            finally:
                self._hand_over()

    def _network_step(self, client: _FastClient, sock: Any) -> None:
        pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS: decrypted, not yet read
        ready = bool(pending) or client.buffered()
        try:
            readable = select.select(
                [sock, self._wake_r], [sock] if client.want_write() else [], [], 0.0 if ready else 1.0
            )[0]
        except (OSError, ValueError):  # the socket was closed under us: loop_read reports it
            readable = [sock]
        if self._wake_r in readable:
            with contextlib.suppress(OSError):
                while self._wake_r.recv(4096):
                    pass
        if ready or sock in readable:
            client.would_block = False
            for _ in range(READ_BURST if client.fast else 1):
                if client.loop_read() or client.would_block or client.socket() is not sock:
                    break
                if len(self._pending) >= HANDOFF_CHUNK:
                    self._hand_over()
        self._hand_over()  # the rest of the burst (blocks while the writer is a full hand-off behind)
        if client.socket() is not sock:
            return
        if client.want_write():
            client.loop_write()
        if client.socket() is sock:
            client.loop_misc()

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
        self._reconnect_delay = None
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

    def _connect_failed(self, error: BaseException) -> None:
        self._last_error = f"{type(error).__name__}: {error}"
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

    def _side_channel(self, section: str, parts: list[str], payload: bytes) -> tuple[str, str, str, bytes] | None:
        """Telemetry (validated, pushed live, not stored) and snapshots (checked here, stored by the
        writer beside the events, so a database hiccup is retried and the ack still follows the
        commit).  Bad payloads raise ValidationError or _Malformed, counted by the caller."""
        if section == "telemetry":
            message = Telemetry.model_validate_json(payload)
            if self.on_message is not None and payload:
                self.on_message("telemetry", message.node, message.stream, payload.decode())
            return None
        node, _, stream, event_id = parts
        if not payload.startswith(JPEG_MAGIC):
            raise _Malformed(SCHEMA, "snapshot: not a JPEG")
        if len(payload) > MAX_SNAPSHOT_BYTES:
            raise _Malformed(SCHEMA, f"snapshot: {len(payload)} bytes is over the {MAX_SNAPSHOT_BYTES} byte limit")
        return event_id, node, stream, payload

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's callback: packets the fast path leaves to paho (with properties, QoS 0, …)."""
        topic = getattr(msg, "_topic", None)  # the raw bytes: msg.topic raises on invalid UTF-8
        self._on_publish(topic if isinstance(topic, bytes) else msg.topic.encode(), msg.payload, msg.mid, msg.qos)

    def _on_publish(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        """Every PUBLISH, in arrival order: validate, then queue it (or a bare ack) for the writer."""
        self._received += 1
        received: Received | None = None
        cleared: tuple[str, str | None] | None = None
        snapshot: tuple[str, str, str, bytes] | None = None
        try:
            name = topic.decode()
        except UnicodeDecodeError:
            name = repr(topic)
            self.count_malformed(WRONG_TOPIC, name, "topic is not UTF-8")
        else:
            try:
                parts = self._parser.split(name)
                section = parts[1] if len(parts) > 1 else ""
                if (len(parts) == 3 and section == "telemetry") or (
                    len(parts) == 4 and section == "snapshots" and self.snapshots is not None
                ):
                    snapshot = self._side_channel(section, parts, payload)
                else:
                    parsed = self._parser.parse_levels(parts, payload, time.time())
                    if isinstance(parsed, Received):
                        received = parsed
                    else:
                        cleared = parsed
            except ValidationError as error:
                reason, detail = _validation_reason(error)
                self.count_malformed(reason, name, detail)
            except _Malformed as bad:
                self.count_malformed(bad.reason, name, bad.detail)
            except Exception as error:  # a bug: never let it stall the message in flight
                log.exception("aggregator failed to handle a message on %s", name)
                self.count_malformed(INTERNAL, name, repr(error))
        # Malformed and side-channel messages are queued too (as bare acks): acks go out in the order
        # messages came in.  Handed over to the writer at the end of the read burst (_hand_over).
        self._pending.append(_Item(received, cleared, mid, qos, self._connection, snapshot))

    def _hand_over(self) -> None:
        """Give the writer what this burst read, in one piece; a full hand-off blocks (stops reading
        from the broker) instead of dropping.

        Only when stopping (or if the writer died) are the items let go: they were not acknowledged,
        so the broker sends them again on the next connection of this session.
        """
        items = self._pending
        if not items:
            return
        self._pending = []
        while not self._handoff.put(items, timeout=0.5):
            if self._stopping or not self._writer.is_alive():
                return

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
        size = self.config.batch_size
        while not self._stop_writer.is_set():
            if time.monotonic() >= next_purge:
                self._purge()
                next_purge = time.monotonic() + self.config.retention_interval_s
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
            # While stopping, what is written is no longer acknowledged (see stop()).
            self._write_batch(batch)

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
        for item in batch:
            if item.snapshot is not None and self.snapshots is not None:
                event_id, node, stream, jpeg = item.snapshot
                try:
                    self.snapshots.put(event_id, node, stream, jpeg)  # idempotent: a retried batch is fine
                except SnapshotError as error:  # checked on receipt already; counted, not retried
                    self.count_malformed(SCHEMA, f"{node}/snapshots/{stream}", f"snapshot: {error}")
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
            run: list[int] = []  # consecutive QoS-1 ids, written at once; order kept across QoS 2
            for item in batch:
                if item.connection != current or item.qos == 0:
                    continue
                if item.qos == 1:
                    run.append(item.mid)
                else:
                    client.ack_many(run)
                    run = []
                    client.ack(item.mid, item.qos)
            client.ack_many(run)
        self._wake()  # the network thread sends them

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
