"""Topic + payload → what the station does with it: a validated message to store, a cleared state, a
snapshot to keep, an alert's snapshot or clip, or live telemetry; anything else raises `Malformed` with
its reason.

Pure (no I/O, no shared state), so it runs on the network thread without locks: the topic is parsed by
`smarteye.wire.topics` (the one place that spells the scheme) and the payload validated by the
`smarteye.wire.messages` models, then checked against the topic (a node may only speak for itself).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from ground_station.ingest.malformed import BAD_JSON, SCHEMA, UNKNOWN_KIND, WRONG_TOPIC, Malformed
from ground_station.snapshots import JPEG_MAGIC, MAX_SNAPSHOT_BYTES
from ground_station.store import AlertMedia, Received
from smarteye.wire.messages import (
    MESSAGE_MODELS,
    Alert,
    DetectionEvent,
    NodeAvailability,
    StreamStatus,
    Telemetry,
    ZoneCounts,
)
from smarteye.wire.topics import Section, TopicError, TopicParser

_STORED_MODELS: dict[Section, type[BaseModel]] = {
    Section.EVENTS: DetectionEvent,
    Section.STATUS: StreamStatus,
    Section.AVAILABILITY: NodeAvailability,
    Section.ALERTS: Alert,
    Section.COUNTS: ZoneCounts,
}
_RETAINED = (StreamStatus, NodeAvailability)  # state: an empty retained payload clears it
MP4_BRAND_AT = slice(4, 8)  # an MP4 file opens with its `ftyp` box: 4 bytes of size, then b"ftyp"
DEFAULT_MAX_CLIP_BYTES = 32_000_000


class Cleared(NamedTuple):
    """An empty retained message: a stream's state (or with `stream` None, the node's) left the broker."""

    node: str
    stream: str | None


class Snapshot(NamedTuple):
    """An event's JPEG, checked on receipt, stored by the writer beside the events (so a database
    hiccup is retried and the ack still follows the commit)."""

    event_id: str
    node: str
    stream: str
    jpeg: bytes


class LiveTelemetry(NamedTuple):
    """Validated telemetry: pushed live as it arrives, not stored."""

    node: str
    stream: str
    payload: str


Parsed = Received | Cleared | Snapshot | AlertMedia | LiveTelemetry


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def validation_reason(error: ValidationError) -> tuple[str, str]:
    """Map a pydantic error to (reason, one-line detail)."""
    errors = error.errors(include_url=False)
    for err in errors:
        if err["type"] == "json_invalid":
            return BAD_JSON, err["msg"]
        if err["loc"] == ("kind",) and err["type"] == "literal_error":
            kind = err.get("input")
            if isinstance(kind, str) and kind in MESSAGE_MODELS:
                return WRONG_TOPIC, f"a {kind!r} message does not belong on this topic"
            return UNKNOWN_KIND, f"unknown kind {kind!r}"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return SCHEMA, f"{where}: {first['msg']}{more}"


def _check_jpeg(what: str, payload: bytes) -> None:
    if not payload.startswith(JPEG_MAGIC):
        raise Malformed(SCHEMA, f"{what}: not a JPEG")
    if len(payload) > MAX_SNAPSHOT_BYTES:
        raise Malformed(SCHEMA, f"{what}: {len(payload)} bytes is over the {MAX_SNAPSHOT_BYTES} byte limit")


def _check_identity(message: Any, node: str, stream: str | None) -> None:
    """The topic says who speaks (the broker's ACL lets a node publish only under its own topics); a
    payload that claims another node or stream is refused, so no node can speak for another."""
    if message.node != node:
        raise Malformed(WRONG_TOPIC, f"node {message.node!r} in the message is not the topic's {node!r}")
    if stream is not None and message.stream != stream:
        raise Malformed(WRONG_TOPIC, f"stream {message.stream!r} in the message is not the topic's {stream!r}")


def topic_text(topic: bytes) -> str:
    """The topic for a log line, even when it is not UTF-8."""
    try:
        return topic.decode()
    except UnicodeDecodeError:
        return repr(topic)


class MessageParser:
    """Parses what arrives under one topic prefix; `snapshots`: whether this station keeps event snapshots
    (alert snapshots and clips it always keeps, clips up to `max_clip_bytes`)."""

    def __init__(self, topic_prefix: str, *, snapshots: bool, max_clip_bytes: int = DEFAULT_MAX_CLIP_BYTES) -> None:
        self._topics = TopicParser(topic_prefix)
        self._snapshots = snapshots
        self._max_clip_bytes = max_clip_bytes

    def parse(self, topic: bytes, payload: bytes, received_time: float) -> Parsed:
        """What `payload` on `topic` is (raises Malformed with the reason if it cannot be used)."""
        try:
            parts = self._topics.parse(topic.decode())
        except UnicodeDecodeError:
            raise Malformed(WRONG_TOPIC, "topic is not UTF-8") from None
        except TopicError as error:
            raise Malformed(WRONG_TOPIC, str(error)) from None
        section, node, stream, event_id = parts
        model = _STORED_MODELS.get(section)
        if model is not None:
            return self._stored(model, node, stream, payload, received_time)
        if section is Section.TELEMETRY:
            message = self._validate(Telemetry, payload)
            _check_identity(message, node, stream)
            return LiveTelemetry(node, stream, payload.decode())  # type: ignore[arg-type]
        if section is Section.SNAPSHOTS and self._snapshots:
            _check_jpeg("snapshot", payload)
            return Snapshot(event_id, node, stream, payload)  # type: ignore[arg-type]
        if section is Section.ALERT_SNAPSHOTS:
            _check_jpeg("alert snapshot", payload)
            return AlertMedia("snapshot", event_id, node, stream, payload)  # type: ignore[arg-type]
        if section is Section.CLIPS:
            if payload[MP4_BRAND_AT] != b"ftyp":
                raise Malformed(SCHEMA, "clip: not an MP4 (no ftyp box first)")
            if len(payload) > self._max_clip_bytes:
                raise Malformed(SCHEMA, f"clip: {len(payload)} bytes is over the {self._max_clip_bytes} byte limit")
            return AlertMedia("clip", event_id, node, stream, payload)  # type: ignore[arg-type]
        raise Malformed(WRONG_TOPIC, f"this station does not take {section} messages")

    def _stored(
        self, model: type[BaseModel], node: str, stream: str | None, payload: bytes, received_time: float
    ) -> Received | Cleared:
        if not payload:
            if model not in _RETAINED:
                raise Malformed(BAD_JSON, "empty payload")
            return Cleared(node, stream)
        message = self._validate(model, payload)
        _check_identity(message, node, stream)
        # JSON may carry \u0000, which PostgreSQL text cannot store; the check is rare (cheap byte test first).
        if b"\\u0000" in payload and _has_nul(message.model_dump()):
            raise Malformed(SCHEMA, "text contains a NUL character")
        return Received(message, received_time, payload.decode("utf-8"))

    @staticmethod
    def _validate(model: type[BaseModel], payload: bytes) -> Any:
        try:
            return model.model_validate_json(payload)
        except ValidationError as error:
            raise Malformed(*validation_reason(error)) from None
