"""Plain value types going into and coming out of the store (no ORM objects escape it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from smarteye.wire.messages import (
    Alert,
    AlertClip,
    AlertObject,
    Box,
    DetectionEvent,
    NodeAvailability,
    StreamStatus,
    ZoneCounts,
)
from smarteye.wire.rules import RuleSet


class Received(NamedTuple):
    """A validated message with its receive time and its JSON exactly as it arrived."""

    message: DetectionEvent | StreamStatus | NodeAvailability | Alert | ZoneCounts
    received_time: float
    payload: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored event message: the indexed columns, plus the original JSON in `payload`."""

    id: str
    event_id: str
    seq: int
    type: str
    node: str
    stream: str
    track_id: int
    label: str
    class_id: int
    score: float
    top_score: float
    box_x1: float
    box_y1: float
    box_x2: float
    box_y2: float
    norm_x1: float
    norm_y1: float
    norm_x2: float
    norm_y2: float
    frame_width: int
    frame_height: int
    capture_time: float
    publish_time: float
    received_time: float
    model: str
    end_reason: str | None
    payload: str = field(repr=False)

    @property
    def box(self) -> Box:
        return Box(x1=self.box_x1, y1=self.box_y1, x2=self.box_x2, y2=self.box_y2)

    @property
    def box_norm(self) -> Box:
        return Box(x1=self.norm_x1, y1=self.norm_y1, x2=self.norm_x2, y2=self.norm_y2)

    def message(self) -> DetectionEvent:
        """The full wire message (every field, including those without a column)."""
        return DetectionEvent.model_validate_json(self.payload)


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a newest-first listing; pass `next_cursor` back to get the next (None: no more)."""

    events: list[StoredEvent]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Count:
    """`messages` counts every stored message; `objects` counts tracked objects (their `new` message)."""

    messages: int = 0
    objects: int = 0


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts over a capture-time range: in total, per label, per (node, stream) and per hour."""

    since: float | None
    until: float | None
    total: Count
    by_label: dict[str, Count]
    by_stream: dict[tuple[str, str], Count]
    by_hour: list[tuple[float, Count]]  # (start of the hour, epoch s), oldest first, empty hours left out


@dataclass(frozen=True, slots=True)
class NodeState:
    """Latest availability of a node; `time` is the node's own clock (None for the broker-sent last will)."""

    node: str
    state: str
    time: float | None
    last_seen: float


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """Latest status of one stream, and whether its node is online (None: never heard of the node)."""

    node: str
    stream: str
    state: str
    reason: str | None
    url: str
    source_kind: str
    width: int | None
    height: int | None
    fps: float
    processed_fps: float
    frames: int
    processed: int
    dropped: int
    reconnects: int
    latency_ms: float | None
    last_frame_time: float | None
    time: float
    last_seen: float
    node_state: str | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Event messages deleted by one retention pass (and, apart, the rows of alert data deleted by age)."""

    by_age: int = 0
    by_count: int = 0
    alert_rows: int = 0

    @property
    def total(self) -> int:
        return self.by_age + self.by_count


# --------------------------------------------------------------------- rules and alerts


class AlertMedia(NamedTuple):
    """An alert's snapshot (JPEG) or clip (MP4) as a node sent it (checked on receipt)."""

    kind: str  # "snapshot" | "clip"
    alert_id: str
    node: str
    stream: str
    data: bytes


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch added: new event messages, the alert messages stored for the first time (their
    ids, in order), and the media refused because they name another node's alert."""

    new_events: int = 0
    new_alert_messages: list[str] = field(default_factory=list)
    refused_media: list[AlertMedia] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One alert (situation) as stored: its newest state, transition times and what people did about it."""

    alert_id: str
    node: str
    stream: str
    rule: str
    rule_kind: str
    severity: str
    zone: str | None
    line: str | None
    direction: str | None
    state: str
    seq: int
    count: int
    objects: list[AlertObject]
    line_counts: dict[str, int] | None
    start_time: float
    update_time: float
    end_time: float | None
    rules_version: int
    snapshot: bool
    clip: AlertClip | None
    first_received: float
    last_received: float
    acked_by: str | None
    acked_time: float | None
    resolved_by: str | None
    resolved_time: float | None
    has_snapshot: bool = False  # the JPEG is stored
    has_clip: bool = False  # the MP4 is stored


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: list[StoredAlert]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AlertMessageInfo:
    """One message of an alert's history."""

    id: str
    seq: int
    state: str
    capture_time: float
    received_time: float
    payload: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CountsPoint:
    """Zone and line counts of one stream at one time."""

    time: float
    zones: dict[str, int]
    lines: dict[str, dict[str, int]]
    rules_version: int


@dataclass(frozen=True, slots=True)
class RulesVersion:
    """One saved version of a stream's rules; `rules` None: cleared (the node's own YAML rules run)."""

    node: str
    stream: str
    version: int
    rules: RuleSet | None
    author: str
    time: float
    published_time: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    time: float
    actor: str
    action: str
    target: str
    detail: dict[str, object]


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert message on its way to one webhook endpoint."""

    id: int
    url: str
    message_id: str
    alert_id: str
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_time: float
    last_error: str | None
    last_status: int | None
    created_time: float
    finished_time: float | None
    payload: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: list[Delivery]
    next_cursor: str | None
