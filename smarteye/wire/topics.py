"""The versioned MQTT topic scheme (documented in docs/mqtt.md), in one place: built here by the edge,
parsed here by the ground station, so the two sides cannot drift apart.

    <prefix>/<node>/events/<stream>
    <prefix>/<node>/status/<stream>
    <prefix>/<node>/availability
    <prefix>/<node>/telemetry/<stream>
    <prefix>/<node>/snapshots/<stream>/<event_id>
    <prefix>/<node>/alerts/<stream>                       alerts (QoS 1)
    <prefix>/<node>/alert-snapshots/<stream>/<alert_id>   JPEG with the zone and objects drawn
    <prefix>/<node>/clips/<stream>/<alert_id>             MP4 around the alert's start
    <prefix>/<node>/counts/<stream>                       zone and line counts
    <prefix>/<node>/rules/<stream>                        station → edge: the stream's rules (retained)
    <prefix>/<node>/stored                                station → edge: digests of messages it has stored

The builders also make subscription filters: pass `ANY` (the MQTT single-level wildcard) for a level.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

ANY = "+"  # MQTT single-level wildcard: events_topic(prefix, ANY, ANY) subscribes to every node's events


class Section(StrEnum):
    """The level after the node name: what kind of message the topic carries."""

    EVENTS = "events"
    STATUS = "status"
    AVAILABILITY = "availability"
    TELEMETRY = "telemetry"
    SNAPSHOTS = "snapshots"
    ALERTS = "alerts"
    ALERT_SNAPSHOTS = "alert-snapshots"
    CLIPS = "clips"
    COUNTS = "counts"
    RULES = "rules"
    STORED = "stored"


# Levels after the prefix, per section, which also say what a topic carries: node/section (2),
# node/section/stream (3), node/section/stream/id (4: the event's or the alert's id).
_LEVELS = {
    Section.EVENTS: 3,
    Section.STATUS: 3,
    Section.AVAILABILITY: 2,
    Section.TELEMETRY: 3,
    Section.SNAPSHOTS: 4,
    Section.ALERTS: 3,
    Section.ALERT_SNAPSHOTS: 4,
    Section.CLIPS: 4,
    Section.COUNTS: 3,
    Section.RULES: 3,
    Section.STORED: 2,
}


class Topic(NamedTuple):
    """A parsed topic name: `stream` is None for availability; `event_id` is the event's (snapshots) or the
    alert's (alert snapshots, clips) id, None elsewhere."""

    section: Section
    node: str
    stream: str | None = None
    event_id: str | None = None


class TopicError(ValueError):
    """A topic name outside the scheme; the message says what is wrong with it."""


def events_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/{Section.EVENTS}/{stream}"


def status_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/{Section.STATUS}/{stream}"


def availability_topic(prefix: str, node: str) -> str:
    return f"{prefix}/{node}/{Section.AVAILABILITY}"


def telemetry_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/{Section.TELEMETRY}/{stream}"


def snapshot_topic(prefix: str, node: str, stream: str, event_id: str) -> str:
    """Binary JPEG payload: the frame in which the object was confirmed (its `new` event)."""
    return f"{prefix}/{node}/{Section.SNAPSHOTS}/{stream}/{event_id}"


def alerts_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/{Section.ALERTS}/{stream}"


def alert_snapshot_topic(prefix: str, node: str, stream: str, alert_id: str) -> str:
    """Binary JPEG payload: the frame the alert started on, with the zone or line and the objects drawn."""
    return f"{prefix}/{node}/{Section.ALERT_SNAPSHOTS}/{stream}/{alert_id}"


def clip_topic(prefix: str, node: str, stream: str, alert_id: str) -> str:
    """Binary MP4 payload: the alert's clip, cut from the stream's own H.264 packets."""
    return f"{prefix}/{node}/{Section.CLIPS}/{stream}/{alert_id}"


def counts_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/{Section.COUNTS}/{stream}"


def rules_topic(prefix: str, node: str, stream: str) -> str:
    """Station → edge, retained: the rules a stream runs (the edge subscribes to its own node's)."""
    return f"{prefix}/{node}/{Section.RULES}/{stream}"


def stored_topic(prefix: str, node: str) -> str:
    """Station → edge, not retained: the digests of the node's messages the station is finished with
    (smarteye.wire.confirm); the edge deletes those from its spool."""
    return f"{prefix}/{node}/{Section.STORED}"


class TopicParser:
    """Topic names under one prefix → `Topic`.  Pure, no I/O: the station's receive path calls it for
    every message, so the prefix is prepared once here."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._head = prefix + "/"
        # section name → (section, levels after the prefix): one plain-string lookup per message
        self._shapes = {section.value: (section, _LEVELS[section]) for section in Section}

    def parse(self, topic: str) -> Topic:
        """The parts of `topic`; raises TopicError naming the problem if it does not follow the scheme."""
        if not topic.startswith(self._head):
            raise TopicError(f"outside the topic prefix {self.prefix!r}")
        levels = topic[len(self._head) :].split("/")
        shape = self._shapes.get(levels[1]) if len(levels) > 1 else None
        if shape is None:
            raise TopicError(f"not one of the sections {', '.join(s.value for s in Section)}")
        section, count = shape
        if len(levels) != count:
            raise TopicError(f"{section} topics have {count} levels after the prefix, not {len(levels)}")
        if "" in levels:
            raise TopicError("empty topic level")
        # By shape (see _LEVELS), not by section: the receive path parses every message here.
        if count == 3:
            return Topic(section, levels[0], levels[2])
        if count == 2:
            return Topic(section, levels[0])
        return Topic(section, levels[0], levels[2], levels[3])


def parse_topic(prefix: str, topic: str) -> Topic:
    """`TopicParser(prefix).parse(topic)`, for a single topic."""
    return TopicParser(prefix).parse(topic)
