"""Alerts, their snapshots and clips, and zone counts: parsed (pure) and then end to end over a real
Mosquitto into real stores, with what is malformed counted by reason and a node kept to its own alerts."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ground_station.ingest import Aggregator
from ground_station.ingest.malformed import Malformed
from ground_station.ingest.parse import MessageParser
from ground_station.store import AlertMedia, Received
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import AlertClip, AlertState
from tests.support.alerts import T0, clip_announcement, jpeg_bytes, make_alert, make_counts, mp4_bytes
from tests.support.ingest import Publisher, make_config, wait_until

PREFIX = "smarteye/v1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(100)
MP4 = b"\x00\x00\x00\x20ftypisom" + bytes(100)


def parse(topic: str, payload: bytes | str, max_clip_bytes: int = 1000) -> object:
    raw = payload.encode() if isinstance(payload, str) else payload
    parser = MessageParser(PREFIX, snapshots=False, max_clip_bytes=max_clip_bytes)
    return parser.parse(f"{PREFIX}/{topic}".encode(), raw, 1234.5)


def reason(topic: str, payload: bytes | str) -> tuple[str, str]:
    with pytest.raises(Malformed) as caught:
        parse(topic, payload)
    return caught.value.reason, caught.value.detail


def test_alert_messages_media_and_counts_are_parsed_and_checked() -> None:
    alert, counts = make_alert("a1", 0), make_counts()
    assert parse("node1/alerts/cam1", alert.model_dump_json()) == Received(alert, 1234.5, alert.model_dump_json())
    assert parse("node1/counts/cam1", counts.model_dump_json()) == Received(counts, 1234.5, counts.model_dump_json())
    assert parse("node1/alert-snapshots/cam1/a1", JPEG) == AlertMedia("snapshot", "a1", "node1", "cam1", JPEG)
    assert parse("node1/clips/cam1/a1", MP4) == AlertMedia("clip", "a1", "node1", "cam1", MP4)
    assert reason("node1/alerts/cam1", b"") == ("bad_json", "empty payload")  # not retained state
    assert reason("node1/counts/cam1", b"")[0] == "bad_json"
    assert reason("node2/alerts/cam1", alert.model_dump_json())[0] == "wrong_topic"  # a node speaks for itself
    assert reason("node1/alerts/cam2", alert.model_dump_json())[0] == "wrong_topic"
    assert reason("node1/counts/cam1", alert.model_dump_json())[0] == "wrong_topic"
    bad = json.loads(alert.model_dump_json()) | {"severity": "apocalyptic"}
    assert reason("node1/alerts/cam1", json.dumps(bad)) == ("schema", "severity: Input should be 'info', "
                                                           "'warning' or 'critical'")  # fmt: skip
    assert reason("node1/alert-snapshots/cam1/a1", MP4) == ("schema", "alert snapshot: not a JPEG")
    assert reason("node1/clips/cam1/a1", JPEG) == ("schema", "clip: not an MP4 (no ftyp box first)")
    assert reason("node1/clips/cam1/a1", MP4 + bytes(1000)) == (
        "schema", f"clip: {len(MP4) + 1000} bytes is over the 1000 byte limit",
    )  # fmt: skip
    assert reason("node1/rules/cam1", b"{}")[0] == "wrong_topic"  # the station's own output is not input


pytestmark_broker = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")


@pytestmark_broker
@pytest.mark.timeout(60)
def test_alerts_snapshots_clips_and_counts_end_to_end(
    broker: MosquittoBroker, db_url: str, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    pushed: list[tuple[str, str]] = []

    def on_message(kind: str, node: str, stream: str | None, payload: str) -> None:
        pushed.append((kind, json.loads(payload).get("id", "")))

    aggregator = running(Aggregator(make_config(broker, db_url, prefix, alerts={"max_clip_bytes": 100_000}),
                                    on_message=on_message))  # fmt: skip
    jpeg, mp4 = jpeg_bytes(), mp4_bytes()
    clip = AlertClip(start_time=T0 - 5, end_time=T0 + 5, bytes=len(mp4))
    start = make_alert("a1", 0)
    lifecycle = [
        start,
        make_alert("a1", 1, objects=2),
        clip_announcement(start, clip),
        make_alert("a1", 2, AlertState.END),
    ]
    publisher.event(lifecycle[0], "node1/alerts/cam1")
    publisher.publish("node1/alert-snapshots/cam1/a1", jpeg)
    publisher.publish("node1/clips/cam1/a1", mp4)
    for message in lifecycle[1:]:
        publisher.event(message, "node1/alerts/cam1")
    publisher.event(lifecycle[0], "node1/alerts/cam1")  # a QoS-1 redelivery
    for i in range(3):
        publisher.event(make_counts(time=T0 + 10 * i, people=i), "node1/counts/cam1")
    # Malformed, each counted by its reason and skipped; the rest still arrives.
    publisher.publish("node2/alert-snapshots/cam1/a1", jpeg)  # another node's evidence for node1's alert
    publisher.publish("node1/alert-snapshots/cam1/a1x", b"GIF89a")
    publisher.publish("node1/clips/cam1/a1", b"\x00\x00\x00\x20ftyp" + bytes(200_000))  # over the limit
    publisher.publish("node1/alerts/cam1", b"")
    publisher.event(make_alert("a2", 0, node="node1"), "node1/alerts/cam1")
    publisher.flush()

    assert wait_until(lambda: aggregator.stats().received == 15), aggregator.stats()
    assert aggregator.wait_idle(10)
    stats = aggregator.stats()
    assert (stats.alerts, stats.alerts_stored, stats.counts, stats.alert_media) == (6, 5, 3, 2)
    assert stats.malformed == {"wrong_topic": 1, "schema": 2, "bad_json": 1}
    store = aggregator.store
    alert = store.get_alert("a1")
    assert alert is not None and (alert.state, alert.seq, alert.end_time) == ("end", 2, T0 + 2)
    assert alert.clip == clip and alert.has_clip and alert.has_snapshot
    assert store.alert_snapshot("a1") == jpeg and store.alert_clip("a1") == mp4
    assert [a.alert_id for a in store.query_alerts().alerts] == ["a2", "a1"]
    assert [p.zones["door"] for p in store.counts_series("node1", "cam1")[0]] == [0, 1, 2]
    # Each new alert message is pushed live once (the redelivery is not); counts are pushed as they come.
    assert [i for kind, i in pushed if kind == "alert"] == ["a1:0", "a1:1", "a1:clip", "a1:2", "a2:0"]
    assert sum(kind == "counts" for kind, _ in pushed) == 3
