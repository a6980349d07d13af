"""MqttPublisher against a real, private Mosquitto broker and a real paho subscriber (no mocks).  The broker is
secured as a site runs it (TLS, a login per node and for the station, the ACL); the publisher is node1, the
subscribers log in as the station.  Only the tests about logging in and about TLS verification themselves set
up their own broker.

Tests that restart the broker use `persistence=True` and a clean_session=False subscriber, so the
subscriber's queue survives the restart: otherwise whether the subscriber or the publisher reconnects
first would decide whether events are seen, and the test would be flaky for reasons that have
nothing to do with the publisher.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.outputs.mqtt_publisher import MqttPublisher
from smarteye.config.mqtt import MqttConfig
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.secure_broker import paho_client

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(60),
]

PREFIX = "smarteye-test/v1"
EVENTS = f"{PREFIX}/node1/events/cam1"
AVAIL = f"{PREFIX}/node1/availability"
STATE = f"{PREFIX}/node1/status/cam1"
NODE = "node1"
REPO = Path(__file__).resolve().parents[3]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Collector:
    """A real subscriber that records everything it receives."""

    def __init__(
        self, broker: MosquittoBroker, topic: str, client_id: str | None = None, clean_session: bool = True
    ) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho_client(broker, client_id=client_id or f"collector-{uuid.uuid4().hex[:8]}",
                                  clean_session=clean_session)  # fmt: skip
        self.client.reconnect_delay_set(0.1, 0.5)  # back soon after a broker restart, like the publishers here
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), "collector could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def event_ids(self) -> list[int]:
        return [json.loads(m.payload)["id"] for m in self.on(EVENTS)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event(i: int) -> bytes:
    # The id lets a receiver deduplicate QoS-1 redeliveries; the padding makes payloads non-trivial.
    return json.dumps({"id": i, "label": "person", "pad": "x" * 200}).encode()


def make_publisher(broker: MosquittoBroker, tmp_path: Path, **overrides: object) -> MqttPublisher:
    # A short reconnect wait: the outage tests wait for reconnects, which the default 1 s backoff only slows.
    # The login and TLS tests run their own brokers, without node1: they give what the publisher needs.
    # No station here: the broker's PUBACK settles a message (confirmations are tested on their own).
    login = broker.client_settings(NODE) if NODE in broker.users else {"url": broker.url}
    config = MqttConfig.model_validate(
        {**login, "spool_dir": tmp_path / "spool", "topic_prefix": PREFIX, "reconnect_min_s": 0.1,
         "reconnect_max_s": 0.5, "confirmations": False, **overrides}
    )  # fmt: skip
    return MqttPublisher(config, client_id=f"pub-{uuid.uuid4().hex[:8]}", availability_topic=AVAIL, spool_name="node1")


def assert_complete_in_order(ids: list[int], expected: list[int], payloads: list[bytes]) -> None:
    """Every id present, first occurrences in order; repeats only as identical redeliveries."""
    first_seen: list[int] = []
    seen: dict[int, bytes] = {}
    for i, payload in zip(ids, payloads, strict=True):
        if i in seen:
            assert seen[i] == payload, f"id {i} redelivered with a different payload"
            continue
        seen[i] = payload
        first_seen.append(i)
    assert first_seen == expected


@pytest.fixture
def broker(secure_broker: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return secure_broker(NODE, prefix=PREFIX)


@pytest.fixture
def persistent_broker(secure_broker: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return secure_broker(NODE, prefix=PREFIX, persistence=True)


def test_events_arrive_in_order_with_qos1(broker: MosquittoBroker, tmp_path: Path) -> None:
    sub = Collector(broker, f"{PREFIX}/#")
    pub = make_publisher(broker, tmp_path)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        for i in range(200):
            pub.publish_event(EVENTS, event(i))
        assert wait_until(lambda: len(sub.on(EVENTS)) >= 200, 10)
        received = sub.on(EVENTS)
        assert [json.loads(m.payload)["id"] for m in received] == list(range(200))
        assert all(m.qos == 1 for m in received)  # granted QoS = min(publish, subscribe) = 1
        assert wait_until(lambda: pub.stats()["pending"] == 0, 5)
        stats = pub.stats()
        assert stats["connected"] is True
        assert stats["delivered"] == 200
        assert stats["dropped"] == 0
        assert stats["reconnects"] == 0
    finally:
        pub.stop()
        sub.close()


def test_clean_stop_flushes_what_was_just_published(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Events handed over right before stop() (e.g. the `end`s of a shutdown) are sent, not left spooled."""
    sub = Collector(broker, f"{PREFIX}/#")
    pub = make_publisher(broker, tmp_path)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        for i in range(300):
            pub.publish_event(EVENTS, event(i))
    finally:
        pub.stop(timeout=6.0)
    assert wait_until(lambda: len(sub.on(EVENTS)) >= 300, 5)
    assert [json.loads(m.payload)["id"] for m in sub.on(EVENTS)] == list(range(300))
    sub.close()


def test_clean_stops_log_no_error(broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """paho's network thread logs "Client is not connected" at ERROR when it loops once more after our disconnect();
    a clean stop is not an error, so the node's log must not say one (it did, on most stops)."""
    caplog.set_level(logging.DEBUG)
    for round_ in range(3):
        pub = make_publisher(broker, tmp_path / str(round_))
        pub.start()
        assert wait_until(lambda p=pub: p.connected, 5)
        pub.publish_event(EVENTS, event(round_))
        pub.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_outage_spools_events_and_delivers_all_in_order(persistent_broker: MosquittoBroker, tmp_path: Path) -> None:
    broker = persistent_broker
    sub = Collector(broker, f"{PREFIX}/#", client_id="collector-outage", clean_session=False)
    pub = make_publisher(broker, tmp_path)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        for i in range(10):
            pub.publish_event(EVENTS, event(i))
        assert wait_until(lambda: len(sub.event_ids()) >= 10, 5)

        broker.stop()
        assert wait_until(lambda: not pub.connected, 5)
        started = time.monotonic()
        for i in range(10, 60):
            pub.publish_event(EVENTS, event(i))
        assert time.monotonic() - started < 0.5, "publish_event blocked while the broker was down"
        assert pub.stats()["pending"] == 50

        broker.start()
        assert wait_until(lambda: set(range(60)) <= set(sub.event_ids()), 15), pub.stats()
        assert wait_until(lambda: pub.stats()["pending"] == 0, 5)
        received = sub.on(EVENTS)
        assert_complete_in_order(sub.event_ids(), list(range(60)), [m.payload for m in received])
        stats = pub.stats()
        assert stats["connected"] and stats["reconnects"] == 1 and stats["dropped"] == 0
        assert stats["delivered"] == 60
    finally:
        pub.stop()
        sub.close()


def test_broker_restart_during_a_stream_loses_nothing(persistent_broker: MosquittoBroker, tmp_path: Path) -> None:
    """Kill the broker while events are in flight: unacknowledged ones are re-sent, order is kept."""
    broker = persistent_broker
    sub = Collector(broker, f"{PREFIX}/#", client_id="collector-stream", clean_session=False)
    pub = make_publisher(broker, tmp_path, max_inflight=20)
    pub.start()
    total = 400
    try:
        assert wait_until(lambda: pub.connected, 5)

        def produce() -> None:
            for i in range(total):
                pub.publish_event(EVENTS, event(i))
                time.sleep(0.001)

        producer = threading.Thread(target=produce)
        producer.start()
        assert wait_until(lambda: len(sub.event_ids()) >= 50, 5)
        broker.stop()
        time.sleep(0.2)
        broker.start()
        producer.join()
        assert wait_until(lambda: set(range(total)) <= set(sub.event_ids()), 20), pub.stats()
        assert wait_until(lambda: pub.stats()["pending"] == 0, 5)
        received = sub.on(EVENTS)
        assert_complete_in_order(sub.event_ids(), list(range(total)), [m.payload for m in received])
        assert pub.stats()["reconnects"] == 1
    finally:
        pub.stop()
        sub.close()


_KILLED_PUBLISHER = """
import json, sys, time
from smarteye.config.mqtt import MqttConfig
from edge.outputs.mqtt_publisher import MqttPublisher
config = MqttConfig.model_validate({**json.loads(sys.argv[1]), "spool_dir": sys.argv[2], "confirmations": False})
pub = MqttPublisher(config, client_id="doomed", availability_topic=sys.argv[3], spool_name="doomed")
pub.start()
deadline = time.monotonic() + 10
while not pub.connected and time.monotonic() < deadline:
    time.sleep(0.01)
print("ready" if pub.connected else "timeout", flush=True)
time.sleep(60)
"""


def _retained(broker: MosquittoBroker, topic: str) -> bytes | None:
    """What a newly arriving subscriber sees as the retained value of `topic`."""
    probe = Collector(broker, topic)
    try:
        wait_until(lambda: bool(probe.on(topic)), 1.0)
        retained = [m for m in probe.on(topic) if m.retain]
        return retained[-1].payload if retained else None
    finally:
        probe.close()


def test_availability_online_last_will_and_clean_stop(broker: MosquittoBroker, tmp_path: Path) -> None:
    # Clean stop: retained `online` while running, retained `offline` after stop().
    pub = make_publisher(broker, tmp_path)
    pub.start()
    assert wait_until(lambda: pub.connected, 5)
    assert wait_until(lambda: _retained(broker, AVAIL) == b"online", 5)
    pub.stop()
    assert not pub.connected
    assert _retained(broker, AVAIL) == b"offline"

    # Dying without a DISCONNECT: the broker publishes the last will.
    watcher = Collector(broker, AVAIL)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    login = json.dumps(broker.client_settings(NODE))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PUBLISHER, login, str(tmp_path / "spool2"), AVAIL],
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        assert wait_until(lambda: [m.payload for m in watcher.on(AVAIL)][-1:] == [b"online"], 5)
        proc.kill()  # SIGKILL: no clean disconnect, the kernel just closes the socket
        proc.wait(5)
        assert wait_until(lambda: [m.payload for m in watcher.on(AVAIL)][-1:] == [b"offline"], 5)
        assert _retained(broker, AVAIL) == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        watcher.close()


def test_state_is_republished_after_broker_restart(broker: MosquittoBroker, tmp_path: Path) -> None:
    # No broker persistence: a restart forgets retained messages, so only a re-publish restores them.
    pub = make_publisher(broker, tmp_path)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        pub.publish_state(STATE, b"live v1")
        assert wait_until(lambda: _retained(broker, STATE) == b"live v1", 5)

        broker.restart()
        assert wait_until(lambda: pub.connected and pub.stats()["reconnects"] == 1, 10)
        assert wait_until(lambda: _retained(broker, STATE) == b"live v1", 5)
        assert _retained(broker, AVAIL) == b"online"

        # Latest value wins: a change made while disconnected is what the broker ends up with.
        broker.stop()
        assert wait_until(lambda: not pub.connected, 5)
        pub.publish_state(STATE, b"down v2")
        pub.publish_state(STATE, b"down v3")
        broker.start()
        assert wait_until(lambda: pub.connected and pub.stats()["reconnects"] == 2, 10)
        assert wait_until(lambda: _retained(broker, STATE) == b"down v3", 5)
    finally:
        pub.stop()


def test_spool_limit_keeps_newest(persistent_broker: MosquittoBroker, tmp_path: Path) -> None:
    broker = persistent_broker
    sub = Collector(broker, f"{PREFIX}/#", client_id="collector-limit", clean_session=False)
    broker.stop()
    pub = make_publisher(broker, tmp_path, spool_max_messages=10)
    pub.start()  # must not fail although the broker is down
    try:
        for i in range(25):
            pub.publish_event(EVENTS, event(i))
        stats = pub.stats()
        assert stats["pending"] == 10 and stats["dropped"] == 15 and not stats["connected"]

        broker.start()
        assert wait_until(lambda: set(range(15, 25)) <= set(sub.event_ids()), 15), pub.stats()
        assert wait_until(lambda: pub.stats()["pending"] == 0, 5)
        assert sorted(set(sub.event_ids())) == list(range(15, 25))
        assert pub.stats()["dropped"] == 15
        assert pub.stats()["delivered"] == 10
    finally:
        pub.stop()
        sub.close()


def test_spooled_events_survive_a_publisher_restart(broker: MosquittoBroker, tmp_path: Path) -> None:
    sub = Collector(broker, f"{PREFIX}/#")
    first = make_publisher(broker, tmp_path)  # never started: events only reach the spool
    for i in range(5):
        first.publish_event(EVENTS, event(i))
    first.stop()
    with pytest.raises(RuntimeError):
        first.publish_event(EVENTS, event(99))

    second = make_publisher(broker, tmp_path)  # same spool_name -> same file
    assert second.stats()["pending"] == 5
    second.start()
    try:
        assert wait_until(lambda: len(sub.event_ids()) >= 5, 5)
        assert sub.event_ids() == list(range(5))
    finally:
        second.stop()
        sub.close()


def test_credentials_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.outputs.mqtt")
    with MosquittoBroker(users={"edge": "s3cret-pw"}) as broker:
        good = make_publisher(broker, tmp_path, url=f"mqtt://edge:s3cret-pw@127.0.0.1:{broker.port}")
        assert "s3cret" not in repr(good.config) and "s3cret" not in good.config.url
        assert good.config.redacted_url == f"mqtt://***@127.0.0.1:{broker.port}"
        good.start()
        try:
            assert wait_until(lambda: good.connected, 5)
        finally:
            good.stop()

        bad = make_publisher(broker, tmp_path, url=broker.url, username="edge", password="wrong-pw")
        bad.start()
        try:
            assert wait_until(lambda: "refused" in caplog.text, 5)
            assert not bad.connected
        finally:
            bad.stop()
    assert "MQTT connected to mqtt://***@127.0.0.1" in caplog.text
    assert "s3cret" not in caplog.text and "wrong-pw" not in caplog.text


def test_invalid_topics_are_rejected_up_front(broker: MosquittoBroker, tmp_path: Path) -> None:
    pub = make_publisher(broker, tmp_path)
    try:
        with pytest.raises(ValueError):
            pub.publish_event(f"{PREFIX}/+/events", b"x")
        with pytest.raises(ValueError):
            pub.publish_state("", b"x")
        assert pub.stats()["pending"] == 0
    finally:
        pub.stop()


_CERT_COMMANDS = (
    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {ca_key} -out {ca_crt}"
    " -days 2 -subj /CN=test-ca"
    " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {key} -out {csr} -subj /CN=127.0.0.1",
    "x509 -req -in {csr} -CA {ca_crt} -CAkey {ca_key} -CAcreateserial -out {crt} -days 2 -extfile {ext}",
)


def _make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1: (ca.crt, server.crt, server.key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    names = {"ca_crt": "ca.crt", "ca_key": "ca.key", "crt": "server.crt", "key": "server.key"}
    paths = {k: str(directory / v) for k, v in {**names, "csr": "server.csr", "ext": "server.ext"}.items()}
    Path(paths["ext"]).write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    for command in _CERT_COMMANDS:
        args = [arg.format(**paths) for arg in command.split()]
        subprocess.run([openssl, *args], check=True, capture_output=True)
    return Path(paths["ca_crt"]), Path(paths["crt"]), Path(paths["key"])


def test_tls_verifies_the_broker(tmp_path: Path) -> None:
    ca, crt, key = _make_certs(tmp_path)
    with MosquittoBroker(certfile=crt, keyfile=key) as broker:
        assert broker.url.startswith("mqtts://")
        trusted = make_publisher(broker, tmp_path, tls={"ca_file": str(ca)})
        assert trusted.config.use_tls
        trusted.start()
        try:
            assert wait_until(lambda: trusted.connected, 5)
            for i in range(3):
                trusted.publish_event(EVENTS, event(i))
            assert wait_until(lambda: trusted.stats()["delivered"] == 3, 5)
        finally:
            trusted.stop()

        # mqtts:// alone means "verify against the system CAs", which do not know our test CA.
        untrusted = make_publisher(broker, tmp_path / "u")
        untrusted.start()
        try:
            time.sleep(0.3)
            assert not untrusted.connected
        finally:
            untrusted.stop()


def test_one_spool_file_has_one_user(broker: MosquittoBroker, tmp_path: Path) -> None:
    first = make_publisher(broker, tmp_path)
    try:
        with pytest.raises(RuntimeError, match="in use"):
            make_publisher(broker, tmp_path)
    finally:
        first.stop()
    make_publisher(broker, tmp_path).stop()  # free again once the first one is stopped


def test_config_validation_and_redaction() -> None:
    config = MqttConfig(url="mqtts://edge:pw@broker.example")
    assert (config.host, config.port, config.use_tls) == ("broker.example", 8883, True)
    assert config.username == "edge" and config.password is not None
    assert config.password.get_secret_value() == "pw"
    assert "pw" not in config.url and "pw" not in repr(config)
    assert config.redacted_url == "mqtts://***@broker.example:8883"
    assert MqttConfig().spool_dir.is_absolute()  # ~ expanded
    assert not MqttConfig().use_tls and MqttConfig(tls={}).use_tls
    for bad, message in [
        ({"url": "http://broker:1883"}, "mqtt:// or mqtts://"),
        ({"url": "mqtt://:1883"}, "no host"),
        ({"url": "mqtt://broker:70000"}, "port"),
        ({"topic_prefix": "smarteye/#"}, "wildcards"),
        ({"topic_prefix": "/smarteye"}, "start or end"),
        ({"keepalive_s": 1}, "greater than or equal"),
        ({"spool_max_messages": 5}, "greater than or equal"),
        ({"password": "x"}, "username"),
        ({"tls": {"cert_file": "c.pem"}}, "together"),
        ({"colour": "red"}, "Extra inputs"),
    ]:
        with pytest.raises(ValueError, match=message):
            MqttConfig.model_validate(bad)


def test_subscriptions_get_retained_messages_again_after_a_reconnect(persistent_broker: MosquittoBroker,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    rules = f"{PREFIX}/node1/rules/cam1"
    setter = paho_client(persistent_broker, client_id="station-like")
    setter.connect(persistent_broker.host, persistent_broker.port)
    setter.loop_start()
    setter.publish(rules, b"v1", qos=1, retain=True).wait_for_publish(5)
    received: list[tuple[str, bytes]] = []

    def handler(topic: str, payload: bytes) -> None:
        received.append((topic, payload))
        if payload == b"poison":
            raise ValueError("a bad message costs only itself")

    pub = make_publisher(persistent_broker, tmp_path)
    pub.subscribe(f"{PREFIX}/node1/rules/+", handler)  # before start: subscribed on connect
    pub.start()
    try:
        assert wait_until(lambda: (rules, b"v1") in received, 10), received
        setter.publish(rules, b"poison", qos=1).wait_for_publish(5)
        setter.publish(rules, b"v2", qos=1, retain=True).wait_for_publish(5)
        assert wait_until(lambda: (rules, b"v2") in received, 5), received
        setter.disconnect()  # before loop_stop, which would otherwise sit out paho's 1 s select timeout
        setter.loop_stop()
        persistent_broker.restart()  # clean session: the publisher subscribes again and gets the retained v2
        count = len(received)
        assert wait_until(lambda: pub.connected and pub.stats()["reconnects"] == 1, 10)
        assert wait_until(lambda: len(received) > count and received[-1] == (rules, b"v2"), 10), received
        other = f"{PREFIX}/node1/rules/cam2"
        pub.subscribe(other, handler)  # while connected: subscribed at once
        again = paho_client(persistent_broker, client_id="station-like-2")
        again.connect(persistent_broker.host, persistent_broker.port)
        again.loop_start()
        again.publish(other, b"t", qos=1, retain=True).wait_for_publish(5)
        again.disconnect()
        again.loop_stop()
        assert wait_until(lambda: (other, b"t") in received, 5), received
    finally:
        pub.stop()
        setter.loop_stop()
