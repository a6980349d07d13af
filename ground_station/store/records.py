"""Plain value types going into and coming out of the store (no ORM objects escape it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from smarteye.wire.messages import Box, DetectionEvent, NodeAvailability, StreamStatus


class Received(NamedTuple):
    """A validated message with its receive time and its JSON exactly as it arrived."""

    message: DetectionEvent | StreamStatus | NodeAvailability
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
    """Event messages deleted by one retention pass."""

    by_age: int = 0
    by_count: int = 0

    @property
    def total(self) -> int:
        return self.by_age + self.by_count
