"""The aggregator against a real private Mosquitto, real paho publishers and real databases (no mocks).

Each test uses its own topic prefix and client ids, so one broker serves the whole module.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ground_station import aggregator as aggregator_module
from ground_station.aggregator import Aggregator
from ground_station.config import GroundStationConfig
from ground_station.store import Store
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.factories import make_availability, make_event, make_status

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(60),
]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}/v1"


def make_config(broker: MosquittoBroker, db_url: str, prefix: str, **overrides: Any) -> GroundStationConfig:
    settings: dict[str, Any] = {
        "mqtt": {"url": broker.url, "client_id": f"ground-{uuid.uuid4().hex[:8]}", "topic_prefix": prefix},
        "database_url": db_url,
        "session_expiry_s": 120,
        "batch_linger_s": 0.01,
    }
    settings.update(overrides)
    return GroundStationConfig.model_validate(settings)


class Publisher:
    """A plain paho publisher (what an edge node looks like to the broker)."""

    def __init__(self, broker: MosquittoBroker, prefix: str) -> None:
        self.prefix = prefix
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(200)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.infos.append(self.client.publish(f"{self.prefix}/{topic}", payload, qos=1, retain=retain))

    def event(self, message: Any, topic: str | None = None) -> None:
        self.publish(topic or f"{message.node}/events/{message.stream}", message.model_dump_json())

    def flush(self, timeout: float = 10.0) -> None:
        assert wait_until(lambda: all(info.is_published() for info in self.infos), timeout), "publisher stuck"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: MosquittoBroker, prefix: str) -> Iterator[Publisher]:
    pub = Publisher(broker, prefix)
    yield pub
    pub.close()


@pytest.fixture
def running() -> Iterator[Callable[[Aggregator], Aggregator]]:
    """Start aggregators and make sure they are stopped even if the test fails."""
    started: list[Aggregator] = []

    def start(aggregator: Aggregator) -> Aggregator:
        started.append(aggregator)
        aggregator.start()
        assert aggregator.wait_ready(10), "aggregator did not subscribe"
        return aggregator

    yield start
    for aggregator in started:
        aggregator.stop(timeout=2)


def test_valid_events_stored_once_malformed_counted(
    broker: MosquittoBroker,
    db_url: str,
    prefix: str,
    publisher: Publisher,
    running: Callable[[Aggregator], Aggregator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Retained state published before the aggregator starts must still reach it.
    publisher.publish("node1/status/cam1", make_status("node1", "cam1").model_dump_json(), retain=True)
    publisher.publish("node1/availability", make_availability("node1").model_dump_json(), retain=True)
    publisher.flush()
    caplog.set_level(logging.WARNING, logger="ground_station.aggregator")
    aggregator = running(Aggregator(make_config(broker, db_url, prefix)))

    event = make_event("ref")
    good = json.loads(event.model_dump_json())
    malformed: list[tuple[str, bytes | str, str]] = [
        ("node1/events/cam1", b"{not json", "bad_json"),
        ("node1/events/cam1", b"\xff\xfe\x00", "bad_json"),
        ("node1/events/cam1", b"", "bad_json"),
        ("node1/events/cam1", json.dumps({**good, "kind": "weather"}), "unknown_kind"),
        ("node1/events/cam1", make_status("node1", "cam1").model_dump_json(), "wrong_topic"),
        ("node2/events/cam1", event.model_dump_json(), "wrong_topic"),  # node differs from the topic
        ("node1/events/cam1", json.dumps({**good, "score": 1.5}), "schema"),
        ("node1/events/cam1", json.dumps({k: v for k, v in good.items() if k != "label"}), "schema"),
        ("node1/events/cam1", json.dumps({**good, "label": "per\u0000son"}), "schema"),
        ("node1/events/cam1", json.dumps({**good, "schema_version": 2}), "schema"),
    ]
    valid = [make_event(f"obj{i // 4}", i % 4, stream=f"cam{i % 3}") for i in range(60)]
    for i, message in enumerate(valid):
        publisher.event(message)
        if i % 6 == 0:
            topic, payload, _ = malformed[i // 6]
            publisher.publish(topic, payload)
    for message in valid[::4]:  # 15 redeliveries of messages already sent
        publisher.event(message)
    publisher.flush()

    total = 2 + len(valid) + len(malformed) + 15
    assert wait_until(lambda: aggregator.stats().received >= total), aggregator.stats()
    assert aggregator.wait_idle(10)
    stats = aggregator.stats()
    assert (stats.received, stats.events, stats.stored, stats.duplicates, stats.states) == (total, 75, 60, 15, 2)
    assert stats.malformed == {"bad_json": 3, "unknown_kind": 1, "wrong_topic": 2, "schema": 4}
    assert stats.queue_depth == 0 and stats.connected and stats.db_errors == 0

    store = aggregator.store
    assert store.count_events() == 60
    stored = store.query_events(limit=1000).events
    assert sorted(e.id for e in stored) == sorted(m.id for m in valid)
    assert store.get_event(valid[5].id).message() == valid[5]  # type: ignore[union-attr]
    assert [(h.node, h.stream, h.state, h.node_state) for h in store.health()] == [("node1", "cam1", "live", "online")]

    # One log line per reason, however many messages had it (rate-limited to one a minute).
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert sorted(line.split(": ")[1] for line in lines) == ["bad_json", "schema", "unknown_kind", "wrong_topic"]
    assert all(f"{prefix}/node" in line for line in lines)  # names the topic


def test_events_published_while_down_arrive_after_restart(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher
) -> None:
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    first = Aggregator(config)
    first.start()
    assert first.wait_ready(10)
    first.stop()
    messages = [make_event(f"away{i}") for i in range(30)]
    for message in messages:
        publisher.event(message)
    publisher.flush()
    with Aggregator(config) as second:  # same client id: the broker kept the session and its queue
        assert wait_until(lambda: second.store.count_events() == 30), second.stats()
        assert second.stats().duplicates == 0


class FlakyStore(Store):
    """A real store whose database can be made to fail like an unreachable server."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = threading.Event()

    def write(self, *args: Any, **kwargs: Any) -> int:
        if self.down.is_set():
            raise sa.exc.OperationalError("INSERT INTO events …", {}, ConnectionRefusedError("database is down"))
        return super().write(*args, **kwargs)


def test_database_outage_is_retried_without_loss(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher
) -> None:
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with FlakyStore(config.database_url) as store, Aggregator(config, store=store) as aggregator:
        assert aggregator.wait_ready(10)
        store.down.set()
        for i in range(20):
            publisher.event(make_event(f"outage{i}"))
        publisher.flush()
        assert wait_until(lambda: aggregator.stats().db_errors > 0)
        assert "database is down" in (aggregator.stats().last_error or "")
        store.down.clear()
        assert wait_until(lambda: store.count_events() == 20), aggregator.stats()
        assert aggregator.wait_idle(10)


def test_unstored_messages_are_redelivered_after_a_crash(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher
) -> None:
    """Acknowledged only after commit: what was received but never stored comes back from the broker."""
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with FlakyStore(config.database_url) as store:
        store.down.set()
        doomed = Aggregator(config, store=store)
        doomed.start()
        assert doomed.wait_ready(10)
        for i in range(25):
            publisher.event(make_event(f"crash{i}"))
        publisher.flush()
        assert wait_until(lambda: doomed.stats().received == 25)
        doomed.stop(timeout=1)  # gives up on the stuck writer, like a crash: nothing was acknowledged
        assert store.count_events() == 0
    with Aggregator(config) as restarted:
        assert wait_until(lambda: restarted.store.count_events() == 25), restarted.stats()


def test_rows_the_database_refuses_are_counted_not_retried_forever(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    class PickyStore(Store):
        def write(self, received: Any, *args: Any, **kwargs: Any) -> int:
            received = list(received)
            if any(item.message.label == "poison" for item in received):
                raise sa.exc.DataError("INSERT INTO events …", {}, ValueError("value the database cannot store"))
            return super().write(received, *args, **kwargs)

    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with PickyStore(config.database_url) as store:
        aggregator = running(Aggregator(config, store=store))
        for i in range(12):
            publisher.event(make_event(f"batch{i}", label="poison" if i == 7 else "person"))
        publisher.flush()
        assert wait_until(lambda: aggregator.stats().malformed.get("rejected") == 1), aggregator.stats()
        assert aggregator.wait_idle(10)
        assert store.count_events() == 11


def test_backpressure_never_drops(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    """A tiny queue and a slow database: the broker holds the backlog, nothing is lost."""

    class SlowStore(Store):
        def write(self, *args: Any, **kwargs: Any) -> int:
            time.sleep(0.02)
            return super().write(*args, **kwargs)

    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix, queue_max=5, batch_size=5)
    with SlowStore(config.database_url) as store:
        aggregator = running(Aggregator(config, store=store))
        for i in range(150):
            publisher.event(make_event(f"bp{i}"))
        publisher.flush()
        assert wait_until(lambda: store.count_events() == 150, 30), aggregator.stats()
        stats = aggregator.stats()
        assert stats.batches >= 30 and stats.duplicates == 0


def test_two_instances_share_the_events_on_postgresql(
    broker: MosquittoBroker, pg_url: str, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    first = running(Aggregator(make_config(broker, pg_url, prefix, share_group="ground")))
    second = running(Aggregator(make_config(broker, pg_url, prefix, share_group="ground")))
    assert first.client_id != second.client_id
    assert all("$share/ground/" in s for s in first.subscriptions()[:1])

    messages = [make_event(f"shared{i // 5}", i % 5, stream=f"cam{i % 2}") for i in range(200)]
    for message in messages:
        publisher.event(message)
    for message in messages[::10]:  # redeliveries may land on either instance
        publisher.event(message)
    publisher.flush()

    def received() -> int:
        return first.stats().events + second.stats().events

    assert wait_until(lambda: received() == 220), (first.stats(), second.stats())
    assert first.wait_idle(10) and second.wait_idle(10)
    a, b = first.stats(), second.stats()
    assert a.events > 0 and b.events > 0, "each instance should have received a share"
    assert a.stored + b.stored == 200
    with Store(pg_url) as store:
        assert store.count_events() == 200
        assert store.count_events(stream="cam0") == 100

    # A member that stops cleanly leaves the group: its share goes to the others, not to its session.
    second.stop()
    before = first.stats().events
    for i in range(40):
        publisher.event(make_event(f"after-stop{i}"))
    publisher.flush()
    assert wait_until(lambda: first.stats().events == before + 40), first.stats()
    assert first.wait_idle(10)
    assert first.store.count_events() == 240


def test_reconnects_until_the_broker_is_up_and_after_it_restarts(tmp_path: Path, prefix: str) -> None:
    """The aggregator's own network loop: retries a broker that is down, resubscribes after a restart."""
    own = MosquittoBroker()
    config = make_config(own, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    try:
        with Aggregator(config) as aggregator:
            assert wait_until(lambda: "Error" in (aggregator.stats().last_error or ""), 5), aggregator.stats()
            assert not aggregator.stats().connected
            own.start()
            assert aggregator.wait_ready(15), aggregator.stats()
            pub = Publisher(own, prefix)
            try:
                for i in range(10):
                    pub.event(make_event(f"before{i}"))
                pub.flush()
                assert wait_until(lambda: aggregator.store.count_events() == 10), aggregator.stats()
            finally:
                pub.close()
            own.restart()
            assert wait_until(lambda: aggregator.stats().connections >= 2 and aggregator.stats().subscribed, 15)
            pub = Publisher(own, prefix)
            try:
                for i in range(10):
                    pub.event(make_event(f"after{i}"))
                pub.flush()
                assert wait_until(lambda: aggregator.store.count_events() == 20), aggregator.stats()
            finally:
                pub.close()
            assert aggregator.wait_idle(10)
    finally:
        own.close()


def test_messages_paho_decodes_itself_are_stored_and_acknowledged(
    broker: MosquittoBroker, tmp_path: Path, prefix: str
) -> None:
    """PUBLISH packets with MQTT 5 properties, and QoS 0, take paho's own path; plain QoS 1 the fast one.
    All are stored, and all QoS-1 ones acknowledged (a restarted session gets nothing again)."""
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    v5 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub5-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    v5.connect(broker.host, broker.port)
    v5.loop_start()
    try:
        with Aggregator(config) as aggregator:
            assert aggregator.wait_ready(10)
            assert aggregator._client.fast
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


def test_falls_back_to_stock_paho_if_its_internals_change(
    broker: MosquittoBroker,
    tmp_path: Path,
    prefix: str,
    publisher: Publisher,
    running: Callable[[Aggregator], Aggregator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aggregator_module, "_paho_internals_ok", lambda client: False)
    aggregator = running(Aggregator(make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)))
    assert not aggregator._client.fast
    for i in range(40):
        publisher.event(make_event(f"stock{i // 4}", i % 4))
    publisher.publish("node1/events/cam1", b"{not json")
    publisher.flush()
    assert wait_until(lambda: aggregator.stats().received == 41), aggregator.stats()
    assert aggregator.wait_idle(10)
    stats = aggregator.stats()
    assert (stats.stored, stats.malformed) == (40, {"bad_json": 1})


def _items(*mids: int) -> list[Any]:
    return [aggregator_module._Item(None, None, mid, 1, 1) for mid in mids]


def test_handoff_is_bounded_by_messages_and_keeps_their_order() -> None:
    handoff = aggregator_module._Handoff(maxsize=5)
    assert handoff.put(_items(1, 2, 3), timeout=0)
    assert not handoff.put(_items(4, 5, 6), timeout=0.01)  # 6 > 5 waiting: the network thread waits
    assert handoff.put(_items(4, 5), timeout=0) and len(handoff) == 5
    batch = handoff.get(4, timeout=0)  # across bursts, the second one split
    assert batch is not None and [item.mid for item in batch] == [1, 2, 3, 4]
    assert handoff.put(_items(6, 7, 8, 9), timeout=0)
    assert [item.mid for item in handoff.get(10, timeout=0) or []] == [5, 6, 7, 8, 9]
    assert handoff.get(10, timeout=0.01) == []  # nothing came
    assert handoff.put(_items(*range(10, 20)), timeout=0)  # larger than the bound, but nothing waits

    # A full hand-off blocks the network thread until the writer takes some.
    done = threading.Event()

    def put_more() -> None:
        handoff.put(_items(20), timeout=5)
        done.set()

    thread = threading.Thread(target=put_more)
    thread.start()
    assert not done.wait(0.1)
    assert len(handoff.get(3, timeout=0) or []) == 3
    assert not done.wait(0.1)  # 7 + 1 still over the bound
    assert len(handoff.get(3, timeout=0) or []) == 3
    assert done.wait(5)
    thread.join()
    handoff.close()
    assert [item.mid for item in handoff.get(100, timeout=1) or []] == [*range(16, 21)]
    assert handoff.get(100, timeout=1) is None  # closed and empty: the writer ends


def test_a_large_backlog_is_written_in_full_batches(
    broker: MosquittoBroker, db_url: str, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    """Bursts handed over at once are still cut into batch_size transactions; nothing lost or doubled."""
    config = make_config(broker, db_url, prefix, batch_size=40, queue_max=100)
    aggregator = running(Aggregator(config))
    messages = [make_event(f"burst{i // 5}", i % 5, stream=f"cam{i % 3}") for i in range(600)]
    for message in messages:
        publisher.event(message)
    publisher.flush()
    assert wait_until(lambda: aggregator.store.count_events() == 600, 30), aggregator.stats()
    assert aggregator.wait_idle(10)
    stats = aggregator.stats()
    assert (stats.received, stats.stored, stats.duplicates, stats.queue_depth) == (600, 600, 0, 0)
    assert stats.batches >= 600 // 40
