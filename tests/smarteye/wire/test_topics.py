"""The topic scheme: what the edge builds, the station parses back; anything else is refused with a reason."""

from __future__ import annotations

import pytest

from smarteye.wire.topics import (
    ANY,
    Section,
    Topic,
    TopicError,
    TopicParser,
    alert_snapshot_topic,
    alerts_topic,
    availability_topic,
    clip_topic,
    counts_topic,
    events_topic,
    parse_topic,
    rules_topic,
    snapshot_topic,
    status_topic,
    telemetry_topic,
)

PREFIX = "smarteye/v1"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (events_topic(PREFIX, "node-1", "cam_0"), Topic(Section.EVENTS, "node-1", "cam_0")),
        (status_topic(PREFIX, "node-1", "cam_0"), Topic(Section.STATUS, "node-1", "cam_0")),
        (availability_topic(PREFIX, "node-1"), Topic(Section.AVAILABILITY, "node-1")),
        (telemetry_topic(PREFIX, "node-1", "drone"), Topic(Section.TELEMETRY, "node-1", "drone")),
        (
            snapshot_topic(PREFIX, "node-1", "cam_0", "3f2a-00000007"),
            Topic(Section.SNAPSHOTS, "node-1", "cam_0", "3f2a-00000007"),
        ),
        (alerts_topic(PREFIX, "node-1", "cam_0"), Topic(Section.ALERTS, "node-1", "cam_0")),
        (alert_snapshot_topic(PREFIX, "n", "cam", "a1"), Topic(Section.ALERT_SNAPSHOTS, "n", "cam", "a1")),
        (clip_topic(PREFIX, "n", "cam", "a1"), Topic(Section.CLIPS, "n", "cam", "a1")),
        (counts_topic(PREFIX, "n", "cam"), Topic(Section.COUNTS, "n", "cam")),
        (rules_topic(PREFIX, "n", "cam"), Topic(Section.RULES, "n", "cam")),
    ],
)
def test_every_built_topic_parses_back(name: str, expected: Topic) -> None:
    assert parse_topic(PREFIX, name) == expected
    assert TopicParser(PREFIX).parse(name) == expected


def test_built_names_follow_the_documented_scheme() -> None:
    """docs/mqtt.md spells these; other MQTT clients depend on them."""
    assert events_topic(PREFIX, "n", "s") == "smarteye/v1/n/events/s"
    assert status_topic(PREFIX, "n", "s") == "smarteye/v1/n/status/s"
    assert availability_topic(PREFIX, "n") == "smarteye/v1/n/availability"
    assert telemetry_topic(PREFIX, "n", "s") == "smarteye/v1/n/telemetry/s"
    assert snapshot_topic(PREFIX, "n", "s", "e") == "smarteye/v1/n/snapshots/s/e"


def test_builders_make_subscription_filters() -> None:
    assert events_topic(PREFIX, ANY, ANY) == "smarteye/v1/+/events/+"
    assert availability_topic(PREFIX, ANY) == "smarteye/v1/+/availability"
    assert snapshot_topic(PREFIX, ANY, ANY, ANY) == "smarteye/v1/+/snapshots/+/+"


def test_a_prefix_of_several_levels_is_taken_whole() -> None:
    prefix = "site/a/smarteye/v1"
    assert parse_topic(prefix, events_topic(prefix, "n", "s")) == Topic(Section.EVENTS, "n", "s")
    with pytest.raises(TopicError, match="outside the topic prefix"):
        parse_topic(prefix, events_topic("site/b/smarteye/v1", "n", "s"))


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("other/v1/n/events/s", "outside the topic prefix"),
        ("smarteye/v1x/n/events/s", "outside the topic prefix"),  # a longer prefix is not this one
        ("smarteye/v1", "outside the topic prefix"),
        ("smarteye/v1/n", "not one of the sections"),
        ("smarteye/v1/n/weather/s", "not one of the sections"),
        ("smarteye/v1/n/Events/s", "not one of the sections"),
        ("smarteye/v1/n/events", "events topics have 3 levels after the prefix, not 2"),
        ("smarteye/v1/n/events/s/extra", "events topics have 3 levels after the prefix, not 4"),
        ("smarteye/v1/n/status", "status topics have 3 levels"),
        ("smarteye/v1/n/availability/s", "availability topics have 2 levels"),
        ("smarteye/v1/n/telemetry/s/x", "telemetry topics have 3 levels"),
        ("smarteye/v1/n/snapshots/s", "snapshots topics have 4 levels after the prefix, not 3"),
        ("smarteye/v1//events/s", "empty topic level"),
        ("smarteye/v1/n/events/", "empty topic level"),
        ("smarteye/v1/n/snapshots/s/", "empty topic level"),
    ],
)
def test_malformed_topics_are_refused_with_a_reason(name: str, problem: str) -> None:
    with pytest.raises(TopicError, match=problem):
        parse_topic(PREFIX, name)
