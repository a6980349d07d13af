"""The aggregator as a whole, against a real private Mosquitto, real paho publishers and real databases
(no mocks): what arrives is stored once, what is malformed is counted by reason, instances share load."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from ground_station.ingest import Aggregator
from ground_station.snapshots import Snapshots
from ground_station.store import Store
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import Telemetry
from tests.support.factories import make_availability, make_event, make_status
from tests.support.ingest import Publisher, make_config, wait_until

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(60),
]


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
    caplog.set_level(logging.WARNING, logger="ground_station.ingest")
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


def test_subscriptions_cover_the_topic_scheme_and_share_only_what_is_stored_once(tmp_path: Path) -> None:
    """Retained state is never sent on a shared subscription (MQTT 5): status, availability and telemetry
    stay plain subscriptions in a share group; events, snapshots, alerts, their media and counts are shared."""
    config = make_config(MosquittoBroker(), f"sqlite:///{tmp_path}/ground.sqlite", "site/v1", share_group="g")
    with Store(config.database_url) as store:
        aggregator = Aggregator(config, store, snapshots=Snapshots(store.engine))
        assert aggregator.subscriptions() == [
            "$share/g/site/v1/+/events/+",
            "site/v1/+/status/+",
            "site/v1/+/availability",
            "site/v1/+/telemetry/+",
            "$share/g/site/v1/+/snapshots/+/+",
            "$share/g/site/v1/+/alerts/+",
            "$share/g/site/v1/+/alert-snapshots/+/+",
            "$share/g/site/v1/+/clips/+/+",
            "$share/g/site/v1/+/counts/+",
        ]
        aggregator.stop()  # never started: releases what it holds, and a second stop is harmless
        aggregator.stop()


def test_snapshots_are_kept_and_telemetry_pushed_live(
    broker: MosquittoBroker,
    tmp_path: Path,
    prefix: str,
    publisher: Publisher,
    running: Callable[[Aggregator], Aggregator],
) -> None:
    """The side channels: a snapshot is stored beside its event (after the commit, like the event);
    telemetry is validated and pushed live, not stored; `on_message` sees stored messages once stored."""
    jpeg = b"\xff\xd8\xff\xe0" + bytes(200)
    telemetry = Telemetry(node="node1", stream="drone", source="mavlink", time=1_700_000_000.0)
    seen: list[tuple[str, str, str | None]] = []
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with Store(config.database_url) as store:
        snapshots = Snapshots(store.engine)

        def on_message(kind: str, node: str, stream: str | None, payload: str) -> None:
            seen.append((kind, node, stream))

        aggregator = running(Aggregator(config, store, snapshots=snapshots, on_message=on_message))
        event = make_event("snap")
        publisher.event(event)
        publisher.publish(f"node1/snapshots/cam1/{event.event_id}", jpeg)
        publisher.publish("node1/snapshots/cam1/not-a-jpeg", b"GIF89a")
        publisher.publish("node1/telemetry/drone", telemetry.model_dump_json())
        publisher.flush()
        assert wait_until(lambda: aggregator.stats().received == 4), aggregator.stats()
        assert aggregator.wait_idle(10)
        assert snapshots.get(event.event_id) == jpeg
        assert snapshots.get("not-a-jpeg") is None
        stats = aggregator.stats()
        assert (stats.events, stats.stored, stats.states, stats.malformed) == (1, 1, 0, {"schema": 1})
        assert sorted(seen) == [("event", "node1", "cam1"), ("telemetry", "node1", "drone")]
