"""The MQTT network thread: connect, read in bursts, write, keep alive, reconnect with backoff.

Like paho's loop_forever, through its public pieces (reconnect, socket, loop_read, loop_write,
want_write, loop_misc), except that one wake-up reads every packet that has arrived (paho 2.2's
loop_read ignores max_packets and reads one packet per select()).  With client.FastClient this is
what makes ≥ 10,000 messages/s possible in Python.  What a burst reads goes to the writer a burst at
a time (handoff.Burst), at least every HANDOFF_CHUNK messages.

The session makes the store durable: MQTT 5, clean start off, a session expiry.  Messages are
acknowledged only after the commit (writer.py), so a crash between receipt and commit leaves them
unacknowledged in the broker session, and the broker sends them again.  The broker never has more
than `queue_max` (≤ 65535, the MQTT 5 receive maximum) unacknowledged messages out to us, which is
the real backpressure: a slow database slows the broker's sending, not our socket reads, so
keepalives keep flowing.

The station also publishes on this connection (a stream's rules, retained, QoS 1: `publish`), from
any thread; `on_connected` tells the owner each time a connection is up, e.g. to publish what could
not be published while it was down.

Acknowledgements must go to the connection the message came in on: after a reconnect the broker
re-sends unacknowledged messages and may reuse their packet ids, so an old-connection ack could
confirm a different, not-yet-stored message.  Connections are numbered; `acknowledge` sends only for
the current one, atomically with a reconnect (the connection lock).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ground_station.config import GroundStationConfig
from ground_station.ingest.client import FastClient, message_topic
from ground_station.ingest.handoff import Burst, Item
from smarteye.config.mqtt import paho_logger

log = logging.getLogger(__name__)

MAX_RECEIVE_MAXIMUM = 65535  # MQTT 5 limit on messages in flight to one client
READ_BURST = 2000  # packets handled per wake-up before writes (acks) and keepalive get a turn
HANDOFF_CHUNK = 250  # messages read in a burst are handed to the writer at least this often
UNSUPPORTED_PROTOCOL = 0x84  # CONNACK reason (an MQTT 3.1.1 broker's return code 1, as paho reports it)
NEEDS_MQTT5 = "the ground station needs an MQTT 5 broker (Mosquitto >= 1.6, EMQX, HiveMQ, VerneMQ)"
WARN_INTERVAL_S = 60.0


_paho_log = paho_logger("ground_station.ingest.paho")

PublishHandler = Callable[[bytes, bytes, int, int], None]  # (topic, payload, mid, qos), in arrival order


class NetworkLoop:
    """One MQTT connection at a time, on its own thread; `on_publish` gets every PUBLISH and fills
    `burst`; `on_error(text or None)` reports connection trouble (None: connected again)."""

    def __init__(
        self,
        config: GroundStationConfig,
        client_id: str,
        subscriptions: list[str],
        on_publish: PublishHandler,
        burst: Burst,
        on_error: Callable[[str | None], None],
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.subscriptions = subscriptions
        self._on_publish = on_publish
        self._burst = burst
        self._on_error = on_error
        self._on_connected = on_connected
        # Outgoing QoS-1 publishes waiting for their PUBACK (mid -> event), and PUBACKs that came before
        # the publishing thread registered its mid.  Held only for dict operations: paho calls on_publish
        # with its own message lock held, which `publish` must not hold while taking this one.
        self._puback_lock = threading.Lock()
        self._awaiting: dict[int, threading.Event] = {}
        self._early_pubacks: set[int] = set()
        # Shared by the network thread (writes) and the writer (acks): see the module docstring.
        self._connection_lock = threading.Lock()
        self.connection = 0  # number of the current (or last) connection; 0 before the first
        self.connected = False
        self.subscribed = threading.Event()  # SUBACK received on the current connection
        self._unsubscribed = threading.Event()  # UNSUBACK of the shared subscription (when stopping)
        self._stop = threading.Event()  # ends the thread at once (even mid-backoff)
        self.stopping = False  # disconnect requested: do not reconnect
        self._reconnect_delay: float | None = None
        self._last_warning, self._last_warning_time = "", 0.0
        self._refused = False  # the last CONNACK refused us
        # Wakes the thread from select(): acks, subscribe/unsubscribe/disconnect from other threads.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.client = self._make_client()
        self._thread = threading.Thread(target=self._run, name="ground-mqtt", daemon=True)

    def _make_client(self) -> FastClient:
        mq = self.config.mqtt
        client = FastClient(
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
            client.tls_set_context(mq.ssl_context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = lambda *args: self._unsubscribed.set()
        client.on_publish = self._on_publish_acked
        client.fast_publish = self._on_publish
        # With this set paho never writes to the socket from the calling thread (ack() from the
        # writer, unsubscribe()/disconnect() from stop()): it queues the packet and we get woken.
        client.on_socket_register_write = lambda *args: self.wake()
        return client

    # ------------------------------------------------------------------ other threads

    def start(self) -> None:
        """Connect in the background; a broker that is down is retried."""
        mq = self.config.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = min(self.config.queue_max, MAX_RECEIVE_MAXIMUM)
        self.client.connect_async(mq.host, mq.port, mq.keepalive_s, clean_start=False, properties=props)
        self._thread.start()

    def acknowledge(self, connection: int, items: Sequence[Item]) -> bool:
        """Acknowledge `items` (in order) if they came in on the current connection, which is still up;
        False if not (the broker sends them again, and the primary key drops the copy)."""
        client = self.client
        with self._connection_lock:
            if not self.connected or connection != self.connection:
                return False
            run: list[int] = []  # consecutive QoS-1 ids, written at once; order kept across QoS 2
            for item in items:
                if item.qos == 1:
                    run.append(item.mid)
                elif item.qos == 2:
                    client.ack_many(run)
                    run = []
                    client.ack(item.mid, item.qos)
            client.ack_many(run)
        self.wake()  # the network thread sends them
        return True

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> threading.Event | None:
        """Publish at QoS 1 from any thread; the event is set once the broker has it (PUBACK).  None when
        not connected: nothing is queued (the owner publishes again once `on_connected` says so)."""
        if not self.connected:
            return None
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"cannot publish on {topic}: {mqtt.error_string(info.rc)}")
        acked = threading.Event()
        with self._puback_lock:
            if info.mid in self._early_pubacks:
                self._early_pubacks.discard(info.mid)
                acked.set()
            else:
                self._awaiting[info.mid] = acked
        return acked

    def unsubscribe(self, topics: list[str], timeout: float) -> None:
        """Drop subscriptions and wait (up to `timeout` s) for the broker to confirm it."""
        if self.connected and topics:
            self._unsubscribed.clear()
            self.client.unsubscribe(topics)
            self._unsubscribed.wait(timeout)

    def stop(self, timeout: float) -> None:
        """Disconnect (the broker keeps the session) and end the thread; nothing is acknowledged after."""
        self.stopping = True
        self.client.disconnect()  # sent by the network thread, which then ends
        if self.client.socket() is None:  # not connected (maybe waiting to reconnect): end it now
            self._stop.set()
        self.wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self.wake()
            self._thread.join(2)

    def close(self) -> None:
        self._wake_r.close()
        self._wake_w.close()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed (stopped)
            self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ network thread

    def _run(self) -> None:
        """Connect, read, write and keep alive; reconnect with backoff (mqtt.reconnect_min_s doubling up to
        reconnect_max_s, as the edge's publisher does; reset on CONNACK)."""
        client = self.client
        mq = self.config.mqtt
        first = True
        while not self._stop.is_set():
            sock = client.socket()
            if sock is None:
                if self.stopping:
                    break
                if not first:
                    delay = mq.reconnect_min_s if self._reconnect_delay is None else self._reconnect_delay * 2
                    self._reconnect_delay = delay = min(delay, mq.reconnect_max_s)
                    if self._stop.wait(delay) or self.stopping:
                        break
                first = False
                try:
                    client.reconnect()  # sends CONNECT; CONNACK arrives through loop_read
                except Exception as error:  # refused, unreachable, TLS, DNS: retried after the backoff
                    self._connect_failed(error)
                continue
            try:
                self._step(client, sock)
            except Exception:  # a bug must not end the thread; the keepalive will notice a dead link
                log.exception("aggregator network loop error")
                time.sleep(0.1)
            finally:
                self._burst.hand_over()

    def _step(self, client: FastClient, sock: Any) -> None:
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
            burst = self._burst
            for _ in range(READ_BURST if client.fast else 1):
                if client.loop_read() or client.would_block or client.socket() is not sock:
                    break
                if len(burst.items) >= HANDOFF_CHUNK:
                    burst.hand_over()
        self._burst.hand_over()  # the rest of the burst (blocks while the writer is a full hand-off behind)
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
        mq = self.config.mqtt
        if reason_code.is_failure:
            text = f"connection refused: {reason_code}"
            if reason_code.value == UNSUPPORTED_PROTOCOL:
                text += f" (the broker does not speak MQTT 5; {NEEDS_MQTT5})"
            self._on_error(text)
            self._warn(f"MQTT broker {mq.redacted_url}: {text}; retrying")
            self._refused = True  # the broker answered: the close that follows needs no second word
            return
        with self._connection_lock:
            self.connection += 1
            self.connected = True
        self._reconnect_delay = None
        self.subscribed.clear()
        self._on_error(None)
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.subscriptions])
        if self._on_connected is not None:
            self._on_connected()
        log.info(
            "aggregator connected to %s as %s (%s session)",
            mq.redacted_url,
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
            f"{topic}: {code}" for topic, code in zip(self.subscriptions, reason_codes, strict=False) if code.is_failure
        ]
        if refused:
            self._on_error("subscription refused: " + "; ".join(refused))
            log.error("aggregator: broker refused subscriptions: %s", "; ".join(refused))
            return
        self.subscribed.set()

    def _connect_failed(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"
        self._on_error(text)
        log.warning("MQTT broker %s unreachable (%s); retrying", self.config.mqtt.redacted_url, text)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._connection_lock:
            was_connected, self.connected = self.connected, False
        self.subscribed.clear()
        if was_connected and reason_code.value != 0:
            self._on_error(f"disconnected: {reason_code}")
            log.warning("aggregator lost MQTT connection (%s); reconnecting", reason_code)
        elif self._refused:
            self._refused = False
        elif not was_connected and not self.stopping:
            # No CONNACK at all: what an MQTT 3.1.1-only broker does with an MQTT 5 CONNECT (or one that
            # drops this client).  Said plainly, not left as a silent retry loop.
            text = f"the broker closed the connection without answering CONNECT: does it speak MQTT 5? {NEEDS_MQTT5}"
            self._on_error(text)
            self._warn(f"MQTT broker {self.config.mqtt.redacted_url}: {text}; retrying")

    def _warn(self, text: str) -> None:
        """A connection problem: logged when it is new, then once a minute while it lasts (the retries
        run every few seconds)."""
        now = time.monotonic()
        if text != self._last_warning or now - self._last_warning_time >= WARN_INTERVAL_S:
            self._last_warning, self._last_warning_time = text, now
            log.warning("%s", text)

    def _on_publish_acked(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        """paho's callback for our own QoS-1 publishes: the broker acknowledged `mid`."""
        with self._puback_lock:
            acked = self._awaiting.pop(mid, None)
            if acked is None:
                self._early_pubacks.add(mid)
        if acked is not None and not reason_code.is_failure:
            acked.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's callback: packets the fast path leaves to paho (with properties, QoS 0, ...)."""
        self._on_publish(message_topic(msg), msg.payload, msg.mid, msg.qos)
