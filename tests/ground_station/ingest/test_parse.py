"""Topic + payload → what the station does with it, or the reason it is refused (pure: no broker)."""

from __future__ import annotations

import json

import pytest

from ground_station.ingest.malformed import Malformed
from ground_station.ingest.parse import Cleared, LiveTelemetry, MessageParser, Snapshot
from ground_station.snapshots import MAX_SNAPSHOT_BYTES
from ground_station.store import Received
from smarteye.wire.messages import Telemetry
from smarteye.wire.topics import TopicError, parse_topic
from tests.support.factories import make_availability, make_event, make_status

PREFIX = "smarteye/v1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(100)


def parse(topic: str | bytes, payload: bytes | str, *, snapshots: bool = True) -> object:
    raw_topic = topic if isinstance(topic, bytes) else f"{PREFIX}/{topic}".encode()
    raw = payload.encode() if isinstance(payload, str) else payload
    return MessageParser(PREFIX, snapshots=snapshots).parse(raw_topic, raw, 1234.5)


def reason(topic: str | bytes, payload: bytes | str, **options: bool) -> tuple[str, str]:
    with pytest.raises(Malformed) as caught:
        parse(topic, payload, **options)
    return caught.value.reason, caught.value.detail


def telemetry() -> Telemetry:
    return Telemetry(node="node1", stream="drone", source="mavlink", time=1_700_000_000.0)


def test_valid_messages_are_kept_exactly_as_they_arrived() -> None:
    event, status, availability = make_event("p"), make_status(), make_availability()
    for topic, message in [
        ("node1/events/cam1", event),
        ("node1/status/cam1", status),
        ("node1/availability", availability),
    ]:
        payload = message.model_dump_json()
        assert parse(topic, payload) == Received(message, 1234.5, payload)  # type: ignore[arg-type]


def test_empty_retained_state_clears_it_but_an_empty_event_is_malformed() -> None:
    assert parse("node1/status/cam1", b"") == Cleared("node1", "cam1")
    assert parse("node1/availability", b"") == Cleared("node1", None)
    assert reason("node1/events/cam1", b"") == ("bad_json", "empty payload")


def test_telemetry_is_validated_for_live_push() -> None:
    payload = telemetry().model_dump_json()
    assert parse("node1/telemetry/drone", payload) == LiveTelemetry("node1", "drone", payload)
    assert reason("node1/telemetry/drone", b"{")[0] == "bad_json"
    assert reason("node1/telemetry/drone", make_status().model_dump_json())[0] == "wrong_topic"


def test_snapshots_are_checked_on_receipt() -> None:
    assert parse("node1/snapshots/cam1/e-1", JPEG) == Snapshot("e-1", "node1", "cam1", JPEG)
    assert reason("node1/snapshots/cam1/e-1", b"GIF89a") == ("schema", "snapshot: not a JPEG")
    too_big = JPEG + bytes(MAX_SNAPSHOT_BYTES)
    assert reason("node1/snapshots/cam1/e-1", too_big)[0] == "schema"
    assert "byte limit" in reason("node1/snapshots/cam1/e-1", too_big)[1]
    assert reason("node1/snapshots/cam1/e-1", JPEG, snapshots=False)[0] == "wrong_topic"


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/node1/events/cam1",
        f"{PREFIX}/node1/weather/cam1",
        f"{PREFIX}/node1/events/cam1/x",
        f"{PREFIX}//events/cam1",
    ],
)
def test_topics_outside_the_scheme_are_wrong_topic_with_the_parsers_reason(topic: str) -> None:
    with pytest.raises(TopicError) as refused:
        parse_topic(PREFIX, topic)
    assert reason(topic.encode(), make_event("p").model_dump_json()) == ("wrong_topic", str(refused.value))


def test_a_topic_that_is_not_utf8_is_wrong_topic() -> None:
    topic = f"{PREFIX}/node\xff/events/cam1".encode("latin-1")
    assert reason(topic, make_event("p").model_dump_json()) == ("wrong_topic", "topic is not UTF-8")


def test_every_malformed_payload_has_its_reason() -> None:
    event = make_event("ref")
    good = json.loads(event.model_dump_json())
    cases: list[tuple[str, bytes | str, str]] = [
        ("node1/events/cam1", b"{not json", "bad_json"),
        ("node1/events/cam1", b"\xff\xfe\x00", "bad_json"),
        ("node1/events/cam1", json.dumps({**good, "kind": "weather"}), "unknown_kind"),
        ("node1/events/cam1", make_status("node1", "cam1").model_dump_json(), "wrong_topic"),
        ("node2/events/cam1", event.model_dump_json(), "wrong_topic"),  # node differs from the topic
        ("node1/events/cam2", event.model_dump_json(), "wrong_topic"),  # stream differs from the topic
        ("node1/status/cam1", make_status("node2", "cam1").model_dump_json(), "wrong_topic"),
        ("node1/availability", make_availability("node2").model_dump_json(), "wrong_topic"),
        ("node1/events/cam1", json.dumps({**good, "score": 1.5}), "schema"),
        ("node1/events/cam1", json.dumps({k: v for k, v in good.items() if k != "label"}), "schema"),
        ("node1/events/cam1", json.dumps({**good, "label": "per\u0000son"}), "schema"),
        ("node1/events/cam1", json.dumps({**good, "schema_version": 2}), "schema"),
    ]
    assert [reason(topic, payload)[0] for topic, payload, _ in cases] == [expected for _, _, expected in cases]
    assert reason("node1/events/cam1", json.dumps({**good, "kind": "weather"}))[1] == "unknown kind 'weather'"
    assert reason("node1/events/cam1", json.dumps({**good, "score": 1.5}))[1].startswith("score: ")
    assert reason("node1/events/cam1", json.dumps({**good, "label": "a\u0000"}))[1] == "text contains a NUL character"
