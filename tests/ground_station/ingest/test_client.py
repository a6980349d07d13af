"""The paho internals the fast receive path relies on (ground_station/ingest/client.py).

The first tests fail loudly, naming what changed, when a paho-mqtt release moves those internals or
leaves the pinned range; the fallback to stock paho (slower, same guarantees) is only the run-time
safety net and logs a WARNING once.  The rest run both paths against a real private Mosquitto.
"""

from __future__ import annotations

import logging
import re
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import __version__ as paho_version
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ground_station.ingest import Aggregator
from ground_station.ingest import client as client_module
from ground_station.ingest.client import FastClient, paho_internals_problems
from ground_station.ingest.handoff import Burst, Handoff, Item
from ground_station.ingest.loop import NetworkLoop
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.factories import make_event
from tests.support.ingest import Publisher, make_config, wait_until
from tests.support.secure_broker import paho_client

REPO = Path(__file__).resolve().parents[3]
needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
pytestmark = pytest.mark.timeout(60)


def _client() -> FastClient:
    return FastClient(mqtt.CallbackAPIVersion.VERSION2, client_id="internals", protocol=mqtt.MQTTv5, manual_ack=True)


def test_paho_internals_are_those_the_fast_path_was_tested_with() -> None:
    client = _client()
    problems = paho_internals_problems(client)
    assert not problems, (
        f"paho-mqtt {paho_version} changed the internals ground_station/ingest/client.py hooks: "
        + "; ".join(problems)
        + ". Adapt FastClient to the new paho (or keep the old one), then move the pin in pyproject.toml."
    )
    assert client.fast


def test_installed_paho_is_within_the_pinned_range() -> None:
    """The pin is the range the fast path was tested with; a paho outside it needs this test suite first."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [re.fullmatch(r"paho-mqtt>=([\d.]+),<([\d.]+)", d.replace(" ", "")) for d in dependencies]
    pin = next((p for p in pins if p), None)
    assert pin is not None, "pyproject.toml must pin paho-mqtt to a tested range (paho-mqtt>=X,<Y)"

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

    low, high = version(pin[1]), version(pin[2])
    assert low <= version(paho_version) < high, (
        f"paho-mqtt {paho_version} is installed, outside the tested range >={pin[1]},<{pin[2]} "
        "that ground_station/ingest/client.py was checked against"
    )


def test_a_changed_paho_is_named_and_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(client_module, "_warned", False)
    monkeypatch.delattr(mqtt.Client, "_packet_queue")
    monkeypatch.setattr(mqtt.Client, "_sock_recv", lambda self, size: b"")
    caplog.set_level(logging.WARNING, logger="ground_station.ingest.client")
    first, second = _client(), _client()
    assert not first.fast and not second.fast
    assert paho_internals_problems(first) == [
        "Client._sock_recv now takes (self, size, ...), not (self, bufsize, ...)",
        "Client._packet_queue is missing",
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one WARNING, not one per client"
    assert "Client._packet_queue is missing" in warnings[0].getMessage()
    assert paho_version in warnings[0].getMessage()


@needs_mosquitto
def test_the_fast_path_takes_plain_qos1_publishes_and_acks_them_in_one_write(
    broker: MosquittoBroker, tmp_path: Path, prefix: str
) -> None:
    """Plain QoS-1 PUBLISH (v3 or v5 without properties) → fast_publish, bytes exact; with properties or
    QoS 0 → paho's own path.  ack_many's single write acknowledges exactly the ids given: an id left out
    comes back on the next connection of the session."""
    config = make_config(broker, f"sqlite:///{tmp_path}/unused.sqlite", prefix)
    calls: list[tuple[str, bytes, bytes, int, int]] = []

    def network_loop() -> NetworkLoop:
        loop = NetworkLoop(
            config,
            config.mqtt.client_id or "",
            [f"{prefix}/#"],
            lambda *args: calls.append(("paho", *args)),
            Burst(Handoff(100), lambda: True),
            lambda error: None,
        )
        loop.client.fast_publish = lambda *args: calls.append(("fast", *args))
        loop.start()
        assert wait_until(loop.subscribed.is_set), "did not subscribe"
        return loop

    def stop(loop: NetworkLoop) -> None:
        loop.stop(2)
        loop.close()

    loop = network_loop()
    v3 = paho_client(broker, "node1", client_id=f"pub3-{uuid.uuid4().hex[:8]}")
    v5 = paho_client(broker, "node1", client_id=f"pub5-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    try:
        for publisher in (v3, v5):
            publisher.connect(broker.host, broker.port)
            publisher.loop_start()
        infos = [
            v3.publish(f"{prefix}/node1/a", b"\x00one", qos=1),
            v5.publish(f"{prefix}/node1/b", b"two", qos=1),
            v5.publish(f"{prefix}/node1/c", b"three", qos=1, properties=props),
            v3.publish(f"{prefix}/node1/d", b"four", qos=0),
            v3.publish(f"{prefix}/node1/e", b"five", qos=1),
        ]
        assert wait_until(lambda: all(info.is_published() for info in infos) and len(calls) == 5), calls
        # Two publishers: the broker may interleave them, so compare by topic.
        assert sorted((topic, path, payload, qos) for path, topic, payload, _, qos in calls) == [
            (f"{prefix}/node1/a".encode(), "fast", b"\x00one", 1),
            (f"{prefix}/node1/b".encode(), "fast", b"two", 1),
            (f"{prefix}/node1/c".encode(), "paho", b"three", 1),
            (f"{prefix}/node1/d".encode(), "paho", b"four", 0),
            (f"{prefix}/node1/e".encode(), "fast", b"five", 1),
        ]
        kept_back = f"{prefix}/node1/c".encode()
        items = [Item(None, None, mid, qos, loop.connection) for _, topic, _, mid, qos in calls if topic != kept_back]
        assert loop.acknowledge(loop.connection, items)
        time.sleep(0.3)  # the network thread writes the acks
        stop(loop)
        calls.clear()
        loop = network_loop()  # same client id and session: only the unacknowledged one comes back
        assert wait_until(lambda: len(calls) == 1), calls
        time.sleep(0.5)
        assert [(topic, payload) for _, topic, payload, _, _ in calls] == [(f"{prefix}/node1/c".encode(), b"three")]
    finally:
        stop(loop)
        for publisher in (v3, v5):
            publisher.disconnect()
            publisher.loop_stop()


@needs_mosquitto
def test_messages_paho_decodes_itself_are_stored_and_acknowledged(
    broker: MosquittoBroker, tmp_path: Path, prefix: str
) -> None:
    """PUBLISH packets with MQTT 5 properties, and QoS 0, take paho's own path; plain QoS 1 the fast one.
    All are stored, and all QoS-1 ones acknowledged (a restarted session gets nothing again)."""
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    v5 = paho_client(broker, "node1", client_id=f"pub5-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    v5.connect(broker.host, broker.port)
    v5.loop_start()
    try:
        with Aggregator(config) as aggregator:
            assert aggregator.wait_ready(10)
            assert aggregator._loop.client.fast
            infos = []
            for i in range(30):
                message = make_event(f"props{i}")
                props = None
                if i % 3 == 0:
                    props = Properties(PacketTypes.PUBLISH)
                    props.UserProperty = ("origin", "test")
                    props.ContentType = "application/json"
                topic = f"{prefix}/{message.node}/events/{message.stream}"
                qos = 0 if i % 5 == 4 else 1
                infos.append(v5.publish(topic, message.model_dump_json(), qos=qos, properties=props))
            assert wait_until(lambda: all(info.is_published() for info in infos))
            assert wait_until(lambda: aggregator.store.count_events() == 30), aggregator.stats()
            assert aggregator.wait_idle(10)
            assert aggregator.stats().received == 30 and aggregator.stats().malformed_total == 0
        with Aggregator(config) as again:  # same client id and session: nothing left unacknowledged
            assert again.wait_ready(10)
            time.sleep(0.5)
            assert again.stats().received == 0, again.stats()
    finally:
        v5.disconnect()
        v5.loop_stop()


@needs_mosquitto
def test_falls_back_to_stock_paho_if_its_internals_change(
    broker: MosquittoBroker,
    tmp_path: Path,
    prefix: str,
    publisher: Publisher,
    running: Callable[[Aggregator], Aggregator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "paho_internals_problems", lambda client: ["Client._handle_publish changed"])
    aggregator = running(Aggregator(make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)))
    assert not aggregator._loop.client.fast
    for i in range(40):
        publisher.event(make_event(f"stock{i // 4}", i % 4))
    publisher.publish("node1/events/cam1", b"{not json")
    publisher.flush()
    assert wait_until(lambda: aggregator.stats().received == 41), aggregator.stats()
    assert aggregator.wait_idle(10)
    stats = aggregator.stats()
    assert (stats.stored, stats.malformed) == (40, {"bad_json": 1})
