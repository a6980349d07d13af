"""MQTT link of the edge node: events that are never lost once accepted, latest-value state, and the
few subscriptions the node takes (the rules the ground station pushes to it).

Design, and why:

* `publish_event` only appends to an on-disk `Spool` and returns, so the video pipeline never waits
  on the network.  A sender thread feeds spooled events to paho in spool order, at most
  `max_inflight` unacknowledged, and deletes an event from the spool only when its PUBACK arrives.
  A crash or a broker outage therefore costs at most duplicates (QoS-1 redelivery), never losses;
  the only loss is the spool's own bound, which drops (and counts) the oldest.
* Ordering across reconnects: paho keeps unacknowledged QoS-1 messages in memory and re-sends them,
  in their original order, right after `on_connect` returns.  To keep new events behind those
  re-sends, the sender waits after every (re)connect until the `online` message published inside
  `on_connect` is acknowledged (the PUBACK is read only after paho has queued its re-sends) before
  sending anything new.  The same barrier keeps a stale state re-sent by paho from overwriting the
  current one, which is re-published only after it.
* End-to-end confirmations (`confirmations`): a PUBACK only says the broker holds the event in memory,
  which a broker crash loses.  So the PUBACK marks the spooled row sent, and only the ground station's
  confirmation on `<prefix>/<node>/stored` (the digests of what it has stored, smarteye.wire.confirm)
  deletes it.  `auto` (the default) starts keeping rows at the first confirmation a station ever sends
  this spool, so a node that no station consumes keeps settling on the PUBACK and never re-sends.
  After every reconnect, rows sent but unconfirmed are sent again (the broker may have lost them), and
  so are rows unconfirmed for `confirm_timeout_s` while connected (the station's session may have
  expired).  Duplicates cost nothing: the station stores by id once.
* Lock discipline: paho calls `on_publish` while holding its own message lock, so this class never
  calls into paho while holding `self._cond` (that would deadlock).  Acks are handed to the sender
  thread through a small deque (bounded by the number of messages in flight).
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.outputs.spool import Spool
from smarteye.config.mqtt import MqttConfig, paho_logger, validate_topic_name
from smarteye.wire.confirm import split_digests
from smarteye.wire.topics import Section, TopicError, TopicParser, stored_topic

log = logging.getLogger("edge.outputs.mqtt")

_paho_log = paho_logger("edge.outputs.mqtt.paho")

ONLINE = "online"
OFFLINE = "offline"
_MAX_PAYLOAD = 268_435_455  # MQTT's largest remaining-length
_IDLE_WAIT_S = 0.5
_STATION_CONFIRMS = "station_confirms"  # spool meta: a station has confirmed rows of this spool


class MqttPublisher:
    """Reliable QoS-1 event publisher with an on-disk spool, retained state and an availability topic."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        availability_topic: str,
        spool_name: str,
        availability_payload: Callable[[str], bytes] = str.encode,
    ) -> None:
        """`availability_payload` renders `online`/`offline` (called at each connect, so it may stamp a time)."""
        validate_topic_name(availability_topic, "availability_topic")
        if not spool_name or any(c in spool_name for c in "/\\\x00") or spool_name in (".", ".."):
            raise ValueError(f"spool_name {spool_name!r} must be a plain file name")
        if not client_id:
            raise ValueError("client_id must not be empty")
        self.config = config
        self.client_id = client_id
        self.availability_topic = availability_topic
        self._availability_payload = availability_payload
        self._url = config.redacted_url
        self._max_inflight = config.max_inflight
        self._stored_topic = _stored_topic(config, availability_topic) if config.confirmations != "off" else None
        self._confirmations = self._stored_topic is not None  # listening for the station's confirmations
        self._spool = Spool(config.spool_dir / f"{spool_name}.sqlite", config.spool_max_messages)

        # Shared state, guarded by _cond.  Never call paho while holding it (see module docstring).
        self._cond = threading.Condition()
        self._connected = False
        self._ready = False  # connected and paho's re-sends are queued ahead of anything new
        self._barrier_mid: int | None = None
        self._epoch = 0  # bumped on every connect/disconnect, so a batch notices a changed link
        self._acks: collections.deque[int] = collections.deque()
        self._confirmed: collections.deque[list[bytes]] = collections.deque()  # digests from the station
        # Keeping rows until confirmed: `on`, or `auto` once a station has confirmed anything to this spool (a node
        # no station consumes would otherwise keep and re-send everything).
        self._keeping = self._confirmations and (
            config.confirmations == "on" or self._spool.remembered(_STATION_CONFIRMS)
        )
        self._requeue = self._keeping  # after a (re)connect: send again what is sent but unconfirmed
        self._next_timeout_check = 0.0  # monotonic time to look for confirmations overdue while connected
        self._resent = 0
        self._unconfirmed = 0  # last known, for stats() after the spool is closed
        self._last_appended = self._spool.last_seq
        self._states_dirty = False
        self._delivered = 0
        self._connections = 0
        self._reconnects = 0
        self._spool_errors = 0
        self._next_flush = 0.0  # when to try again to write what a full disk refused
        self._started = False
        self._stopping = False
        self._closed = False
        self._drain_deadline = 0.0
        self._down_since: float | None = None
        self._unreachable_logged = False
        self._last_error: str | None = None

        # Latest-value-wins state; _state_lock serialises "store + publish" so the newest value is
        # also the last one on the wire.
        self._state_lock = threading.Lock()
        self._states: dict[str, tuple[bytes, bool]] = {}

        # Subscriptions, renewed on every connect (clean session); handlers run on paho's network thread.
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        if self._stored_topic is not None:
            self._subscriptions[self._stored_topic] = self._on_stored
        self._subscribing: dict[int, list[str]] = {}  # SUBSCRIBE mid -> its filters, to name a refused one

        # Owned by the sender thread only.
        self._inflight: dict[int, int] = {}  # paho mid -> spool seq
        self._sent_seq = 0  # everything <= this has been handed to paho (or was dropped)

        try:
            self._client = self._make_client()
        except (OSError, ssl.SSLError) as error:
            self._spool.close()
            raise ValueError(f"MQTT TLS setup failed for {self._url}: {error}") from error
        except BaseException:
            self._spool.close()
            raise
        self._sender = threading.Thread(target=self._run, name=f"mqtt-sender-{spool_name}", daemon=True)

    # ------------------------------------------------------------------ setup

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.enable_logger(_paho_log)
        # A bug in a callback must not kill paho's network thread (and with it all reconnects).
        client.suppress_exceptions = True
        if cfg.username is not None:
            secret = cfg.password.get_secret_value() if cfg.password is not None else None
            client.username_pw_set(cfg.username, secret)
        if cfg.use_tls:
            client.tls_set_context(self.config.ssl_context())
        client.will_set(self.availability_topic, self._availability_payload(OFFLINE), qos=1, retain=True)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        # Our sender enforces the window; an unlimited paho window means paho never parks messages
        # in its "queued" state, which its reconnect logic does not re-send in order.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Begin connecting in the background; never fails because the broker is down."""
        with self._cond:
            if self._closed:
                raise RuntimeError("MqttPublisher was stopped; create a new one")
            if self._started:
                raise RuntimeError("MqttPublisher already started")
            self._started = True
        pending = len(self._spool)
        log.info(
            "MQTT publisher %s connecting to %s (%d events pending in spool)",
            self.client_id,
            self._url,
            pending,
        )
        self._sender.start()
        self._client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Flush the spool while connected (within half the timeout), publish retained `offline`,
        disconnect, close the spool.

        Undelivered events stay in the spool file and are sent by the next publisher using it.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._drain_deadline = time.monotonic() + timeout / 2
            started = self._started
            self._cond.notify_all()
        if started:
            self._sender.join(timeout / 2 + 5.0)
            if self.connected:
                try:
                    info = self._client.publish(
                        self.availability_topic, self._availability_payload(OFFLINE), qos=1, retain=True
                    )
                    info.wait_for_publish(timeout=timeout / 2)
                except (RuntimeError, ValueError):
                    pass  # the link dropped meanwhile; the broker then publishes the will instead
            self._client.disconnect()
            self._client.loop_stop()
        pending = len(self._spool)
        self._spool.close()
        log.info("MQTT publisher %s stopped (%d events left in spool)", self.client_id, pending)

    def __enter__(self) -> MqttPublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """True while a broker session is up."""
        return self._connected

    def publish_event(self, topic: str, payload: bytes) -> None:
        """Accept an event for QoS-1 delivery: it is on disk when this returns; no network wait."""
        validate_topic_name(topic)
        if len(payload) > _MAX_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes exceeds the MQTT maximum")
        if self._closed:
            raise RuntimeError("MqttPublisher is stopped")
        try:
            seq = self._spool.append(topic, payload, qos=1)  # 0: held in memory, the disk is full
        except sqlite3.Error as error:
            with self._cond:
                self._spool_errors += 1
            log.error("MQTT event on %s lost: cannot write spool %s: %s", topic, self._spool.path, error)
            return
        with self._cond:
            if seq > self._last_appended:
                self._last_appended = seq
            self._cond.notify_all()

    def publish_state(self, topic: str, payload: bytes, retain: bool = True) -> None:
        """Set the latest value of a state topic; sent now if connected and again after every reconnect."""
        validate_topic_name(topic)
        if len(payload) > _MAX_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes exceeds the MQTT maximum")
        data = bytes(payload)
        with self._state_lock:
            self._states[topic] = (data, retain)
            with self._cond:
                send_now = self._ready and not self._closed
            if send_now:
                self._client.publish(topic, data, qos=1, retain=retain)

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        """Receive the messages on `topic_filter` (QoS 1, retained ones included, again after every reconnect).

        `handler(topic, payload)` runs on paho's network thread: it must be quick; an exception in it is
        logged and costs only that message.
        """
        with self._cond:
            self._subscriptions[topic_filter] = handler
            connected = self._connected
        if connected:  # otherwise the next connect subscribes (at worst both do: retained messages come twice)
            _, mid = self._client.subscribe(topic_filter, qos=1)
            with self._cond:
                self._subscribing[mid] = [topic_filter]

    def stats(self) -> dict[str, Any]:
        """For status reports: connected, pending, delivered, dropped, reconnects, inflight, last_error...
        `pending` counts what waits for the broker and, with confirmations, for the station (`unconfirmed`);
        `delivered` then counts what the station confirmed."""
        try:
            unconfirmed = self._spool.unconfirmed if self._keeping else 0
            self._unconfirmed = unconfirmed
        except RuntimeError:  # closed: the last figure
            unconfirmed = self._unconfirmed
        with self._cond:
            return {
                "connected": self._connected,
                "pending": len(self._spool),
                "unconfirmed": unconfirmed,
                "confirming": self._keeping,  # events are kept until the station confirms them
                "resent": self._resent,
                "delivered": self._delivered,
                "dropped": self._spool.dropped,
                "reconnects": self._reconnects,
                "inflight": len(self._inflight),
                "spool_errors": self._spool_errors,
                "disk_full": self._spool.disk_full,
                "held": self._spool.held,
                "last_error": self._last_error,
            }

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
            with self._cond:
                self._last_error = f"connection refused: {reason_code}"
            log.warning("MQTT broker %s refused connection: %s; retrying", self._url, reason_code)
            return
        if self._stopping:
            # Connected while stop() is disconnecting: don't leave a retained `online` behind.
            client.publish(self.availability_topic, self._availability_payload(OFFLINE), qos=1, retain=True)
            return
        # Published before paho re-sends old messages; its PUBACK is the ordering barrier.
        info = client.publish(self.availability_topic, self._availability_payload(ONLINE), qos=1, retain=True)
        with self._cond:
            self._connected = True
            self._ready = False
            self._barrier_mid = info.mid
            self._epoch += 1
            self._states_dirty = True
            self._requeue = self._keeping
            self._connections += 1
            if self._connections > 1:
                self._reconnects += 1
            down_for = time.monotonic() - self._down_since if self._down_since is not None else None
            self._down_since = None
            self._unreachable_logged = False
            self._last_error = None
            pending = len(self._spool)
            self._cond.notify_all()
        with self._cond:  # read after `_connected` is set, so subscribe() cannot fall between the two
            filters = list(self._subscriptions)
        if filters:
            _, mid = client.subscribe([(topic_filter, 1) for topic_filter in filters])
            with self._cond:
                self._subscribing[mid] = filters
        if down_for is None:
            log.info("MQTT connected to %s as %s (%d events pending)", self._url, self.client_id, pending)
        else:
            log.info("MQTT reconnected to %s after %.1f s (%d events pending)", self._url, down_for, pending)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError:`, so the cause is still at hand.
        error = sys.exc_info()[1]
        with self._cond:
            self._last_error = f"{type(error).__name__}: {error}" if error else "connect failed"
            if self._unreachable_logged or self._stopping:
                return
            self._unreachable_logged = True
            pending = len(self._spool)
        log.warning(
            "MQTT broker %s unreachable (%s); retrying every <=30 s, events are spooled (%d pending)",
            self._url,
            self._last_error,
            pending,
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            was_connected = self._connected
            self._connected = False
            self._ready = False
            self._barrier_mid = None
            self._epoch += 1
            stopping = self._stopping
            if was_connected:
                self._last_error = f"connection lost: {reason_code}"
                self._down_since = time.monotonic()
                self._unreachable_logged = True  # this line already tells the operator
            pending = len(self._spool)
            self._cond.notify_all()
        if was_connected and not stopping:
            log.warning(
                "MQTT connection to %s lost (%s); reconnecting, %d events pending",
                self._url,
                reason_code,
                pending,
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        for topic_filter, handler in list(self._subscriptions.items()):
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                try:
                    handler(message.topic, message.payload)
                except Exception:
                    log.exception("handling a message on %s failed", message.topic)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        """A refused subscription is said once per connection: a refused `stored` topic means no event is
        ever confirmed (the spool then fills up to its bound)."""
        with self._cond:
            filters = self._subscribing.pop(mid, [])
        for topic_filter, code in zip(filters, reason_codes, strict=False):
            if not code.is_failure:
                continue
            if topic_filter == self._stored_topic:
                log.error(
                    "MQTT broker %s refused the subscription to %s: the ground station's confirmations cannot "
                    "arrive and events stay in the spool; allow it in the broker ACL (configs/mosquitto/acl) "
                    "or set mqtt.confirmations off",
                    self._url,
                    topic_filter,
                )
            else:
                log.warning("MQTT broker %s refused the subscription to %s", self._url, topic_filter)

    def _on_stored(self, topic: str, payload: bytes) -> None:
        """The station's confirmation (paho's network thread): handed to the sender, which deletes the rows."""
        try:
            digests = split_digests(payload)
        except ValueError as error:
            log.warning("ignoring a confirmation on %s: %s", topic, error)
            return
        with self._cond:
            self._confirmed.append(digests)
            self._cond.notify_all()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Runs under paho's message lock: only touch our own state, never call back into paho.
        with self._cond:
            if mid == self._barrier_mid:
                self._barrier_mid = None
                self._ready = self._connected
            self._acks.append(mid)
            self._cond.notify_all()

    # ------------------------------------------------------------------ sender thread

    def _run(self) -> None:
        """Sender loop: settle acks, then hand the next spooled events to paho in order."""
        while True:
            try:
                if not self._step():
                    return
            except Exception:
                log.exception("MQTT sender error; retrying in 1 s (events stay spooled)")
                time.sleep(1.0)

    def _work_available(self) -> bool:
        """Caller holds _cond."""
        if self._acks or self._confirmed or (self._spool.held and time.monotonic() >= self._next_flush):
            return True
        confirming = self._ready and not self._stopping and self._keeping
        if confirming and (self._requeue or time.monotonic() >= self._next_timeout_check):
            return True
        can_send = len(self._inflight) < self._max_inflight and self._last_appended > self._sent_seq
        if self._stopping:
            return self._flushed_or_out_of_time() or (self._ready and can_send)
        if not self._ready:
            return False
        return self._states_dirty or can_send

    def _flushed_or_out_of_time(self) -> bool:
        """Caller holds _cond. A stopping sender flushes the spool while it can, within the deadline."""
        if not self._connected or time.monotonic() >= self._drain_deadline:
            return True
        return not self._inflight and self._sent_seq >= self._last_appended

    def _step(self) -> bool:
        """One round of the sender; False when it should exit."""
        with self._cond:
            while not self._work_available():
                self._cond.wait(_IDLE_WAIT_S)
            acks = list(self._acks)
            self._acks.clear()
            confirmed = [digest for digests in self._confirmed for digest in digests]
            self._confirmed.clear()
            ready = self._ready
            confirming = ready and self._keeping and not self._stopping
            # Read with the acks: a PUBACK of the old connection is then settled before the requeue.
            after_connect = confirming and self._requeue
            if after_connect:
                self._requeue = False
            republish = ready and not self._stopping and self._states_dirty
            if republish:
                self._states_dirty = False
            epoch = self._epoch
            flush = self._spool.held > 0 and time.monotonic() >= self._next_flush
        if flush:  # the disk was full: write what it refused as soon as there is room, in order
            written = self._spool.flush_held()
            with self._cond:
                self._next_flush = time.monotonic() + _IDLE_WAIT_S
                self._last_appended = max(self._last_appended, written)
        with self._cond:
            target = self._last_appended
        if acks:
            self._settle(acks)
        if confirmed:
            if not self._keeping:
                self._start_keeping()
            deleted = self._spool.confirm(confirmed)
            with self._cond:
                self._delivered += deleted
        if confirming:
            self._resend_unconfirmed(after_connect)
        with self._cond:
            if self._stopping and not self._acks and self._flushed_or_out_of_time():
                return False  # flushed, disconnected or out of time
        if republish:
            self._republish_states(epoch)
        if ready:
            self._send_batch(epoch, target)
        return True

    def _settle(self, mids: list[int]) -> None:
        """Acknowledged events: marked sent (confirmations: the station's word deletes them) or deleted
        from the spool; acks of state/availability messages are ignored."""
        seqs = [self._inflight.pop(mid) for mid in mids if mid in self._inflight]
        if not seqs:
            return
        if self._keeping:
            self._spool.mark_sent(seqs)
            return
        self._spool.ack_many(seqs)
        with self._cond:
            self._delivered += len(seqs)

    def _start_keeping(self) -> None:
        """A station confirms this node's events (`auto`): from now on each is kept until it says it stored it."""
        self._spool.remember(_STATION_CONFIRMS)
        with self._cond:
            self._keeping = True
        log.info("a ground station confirms what it stores: events now stay in the spool until it does")

    def _resend_unconfirmed(self, after_connect: bool) -> None:
        """After a (re)connect, every row sent but unconfirmed goes out again (the broker may have lost
        it); while connected, those unconfirmed for `confirm_timeout_s` do (the station may have lost it)."""
        timeout = self.config.confirm_timeout_s
        with self._cond:
            now = time.monotonic()
            if not after_connect and now < self._next_timeout_check:
                return
            self._next_timeout_check = now + min(max(timeout / 10, 1.0), 30.0)
        requeued = self._spool.requeue_sent(None if after_connect else time.time() - timeout)
        if not requeued:
            return
        self._sent_seq = 0  # look from the start again; what is still in flight is skipped (_send_batch)
        with self._cond:
            self._resent += requeued
        log.info(
            "MQTT sending again %d events the ground station has not confirmed (%s)",
            requeued,
            "after a reconnect" if after_connect else f"unconfirmed for {timeout:g} s",
        )

    def _republish_states(self, epoch: int) -> None:
        with self._state_lock:
            for topic, (payload, retain) in list(self._states.items()):
                if self._epoch != epoch:
                    return  # link changed; the next connect marks states dirty again
                self._client.publish(topic, payload, qos=1, retain=retain)

    def _send_batch(self, epoch: int, target: int) -> None:
        room = self._max_inflight - len(self._inflight)
        if room <= 0:
            return
        batch = self._spool.peek(room, after_seq=self._sent_seq)
        in_flight = set(self._inflight.values())
        for msg in batch:
            if self._epoch != epoch:
                return  # stop feeding a link that changed under us; resume on the next round
            if msg.seq in in_flight:  # requeued while paho still holds it (and re-sends it after a reconnect)
                self._sent_seq = msg.seq
                continue
            try:
                info = self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            except ValueError as error:
                # Cannot ever be sent (e.g. written by an older, laxer version): don't block the queue.
                log.error("MQTT dropping unsendable spooled event %d on %r: %s", msg.seq, msg.topic, error)
                self._spool.ack(msg.seq)
                self._sent_seq = msg.seq
                continue
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.05)  # paho did not take it (mid clash); try again shortly, don't spin
                return
            # MQTT_ERR_SUCCESS, or MQTT_ERR_NO_CONN: paho keeps it and sends it on reconnect, in order.
            self._inflight[info.mid] = msg.seq
            self._sent_seq = msg.seq
        if len(batch) < room:
            # The spool had nothing more when peeked, so every seq up to `target` is settled
            # (sent or dropped) and need not be looked for again.
            self._sent_seq = max(self._sent_seq, target)


def _stored_topic(config: MqttConfig, availability_topic: str) -> str | None:
    """The node's confirmation topic, from its availability topic `<prefix>/<node>/availability` (`auto` without
    one: None, no confirmations)."""
    try:
        parsed = TopicParser(config.topic_prefix).parse(availability_topic)
    except TopicError:
        parsed = None
    if parsed is None or parsed.section is not Section.AVAILABILITY:
        if config.confirmations == "auto":
            return None
        raise ValueError(
            f"confirmations need the availability topic {config.topic_prefix}/<node>/availability, not "
            f"{availability_topic!r} (or set mqtt.confirmations off)"
        )
    return stored_topic(config.topic_prefix, parsed.node)
