"""Events stage: turn per-frame tracks into few, meaningful events: `new` once an object is confirmed,
`update` only on real change (moved, relabelled, better score, entered or left a zone) and at a bounded rate,
`end` once it has been gone long enough. Events carry the zones the rules stage found the object in."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field

from edge.config.tracking import EventsConfig
from edge.frame import Frame
from edge.track.tracker import TrackedBox, obb_corners
from smarteye.wire.messages import Box, DetectionEvent, EndReason, EventType, GeoPosition, GeoStatus


@dataclass(slots=True)
class _Object:
    track_id: int
    first_seen: float
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    hits: int = 0
    seq: int = 0
    published: bool = False
    top_score: float = 0.0
    class_scores: dict[int, float] = field(default_factory=dict)
    last_seen: float = 0.0
    box: TrackedBox | None = None
    frame_width: int = 0
    frame_height: int = 0
    pts: float | None = None
    detect_time: float = 0.0
    reported_center: tuple[float, float] = (0.0, 0.0)
    reported_label: int = -1
    reported_top: float = 0.0
    reported_at: float = 0.0
    reported_zones: list[str] = field(default_factory=list)
    geo: GeoPosition | None = None
    geo_fused: GeoPosition | None = None
    geo_status: GeoStatus | None = None

    @property
    def class_id(self) -> int:
        """The class with the most accumulated score, so one odd frame does not relabel it."""
        return max(self.class_scores, key=self.class_scores.__getitem__)


class EventLifecycle:
    """Event state of one stream's tracked objects (bounded by events.max_tracks_per_stream)."""

    name = "events"

    def __init__(self, node: str, stream: str, model: str, names: dict[int, str], config: EventsConfig) -> None:
        self.node, self.stream, self.model, self.names, self.config = node, stream, model, names, config
        self._objects: dict[int, _Object] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def observe(
        self,
        frame: Frame,
        tracks: list[TrackedBox],
        detect_time: float,
        geo_status: GeoStatus | None = None,
    ) -> list[DetectionEvent]:
        """Events caused by one processed frame, including `end`s of objects gone too long.

        Each track's `geo` and the frame's `geo_status` come from the geolocation stage when the
        stream has one; an object keeps the position of the frame it was last seen in.
        """
        events: list[DetectionEvent] = []
        cfg = self.config
        for box in tracks:
            obj = self._objects.get(box.track_id)
            if obj is None:
                if len(self._objects) >= cfg.max_tracks_per_stream:
                    events.extend(self._evict_oldest())
                obj = self._objects[box.track_id] = _Object(box.track_id, frame.capture_time)
            obj.hits += 1
            obj.last_seen = frame.capture_time
            obj.box, obj.pts, obj.detect_time = box, frame.pts, detect_time
            obj.frame_width, obj.frame_height = frame.width, frame.height
            if geo_status is not None:
                obj.geo = box.geo
                obj.geo_fused = box.geo_fused
                obj.geo_status = geo_status
                if geo_status is GeoStatus.OK and obj.geo is None:
                    obj.geo_status = GeoStatus.ABOVE_HORIZON
            obj.top_score = max(obj.top_score, box.score)
            obj.class_scores[box.class_id] = obj.class_scores.get(box.class_id, 0.0) + box.score
            if not obj.published:
                if obj.hits >= cfg.min_hits and obj.top_score >= cfg.min_score:
                    obj.published = True
                    events.append(self._emit(obj, EventType.NEW))
            elif self._changed_enough(obj, frame.capture_time):
                events.append(self._emit(obj, EventType.UPDATE))
        events.extend(self.expire(frame.capture_time, EndReason.GONE))
        return events

    def process(self, frame: Frame) -> Frame:
        """Stage: the events this frame causes (detect time: now, when its objects are known)."""
        frame.events = self.observe(frame, frame.tracks, time.time(), frame.geo_status)
        return frame

    def expire(self, now: float, reason: EndReason) -> list[DetectionEvent]:
        """End objects not seen for events.end_after_s before `now` (capture-time clock)."""
        gone = [tid for tid, obj in self._objects.items() if now - obj.last_seen > self.config.end_after_s]
        return self._end(gone, reason)

    def end_all(self, reason: EndReason) -> list[DetectionEvent]:
        return self._end(list(self._objects), reason)

    def _evict_oldest(self) -> list[DetectionEvent]:
        oldest = min(self._objects, key=lambda tid: self._objects[tid].last_seen)
        return self._end([oldest], EndReason.EVICTED)

    def _end(self, track_ids: list[int], reason: EndReason) -> list[DetectionEvent]:
        events = []
        for tid in track_ids:
            obj = self._objects.pop(tid)
            if obj.published:
                events.append(self._emit(obj, EventType.END, reason))
        return events

    def _changed_enough(self, obj: _Object, now: float) -> bool:
        if now - obj.reported_at < self.config.update_interval_s:
            return False
        if obj.class_id != obj.reported_label or obj.top_score > obj.reported_top + 0.05:
            return True
        if obj.box is not None and obj.box.zones != obj.reported_zones:
            return True  # entered or left a zone (rules stage)
        cx, cy = _center(obj)
        dx, dy = cx - obj.reported_center[0], cy - obj.reported_center[1]
        diagonal = math.hypot(obj.frame_width, obj.frame_height) or 1.0
        return math.hypot(dx, dy) / diagonal >= self.config.update_min_move

    def _emit(self, obj: _Object, kind: EventType, reason: EndReason | None = None) -> DetectionEvent:
        assert obj.box is not None
        box = obj.box
        width, height = obj.frame_width or 1, obj.frame_height or 1
        class_id = obj.class_id
        event = DetectionEvent(
            node=self.node,
            id=f"{obj.event_id}:{obj.seq}",
            event_id=obj.event_id,
            seq=obj.seq,
            type=kind,
            stream=self.stream,
            track_id=obj.track_id,
            label=self.names.get(class_id, str(class_id)),
            class_id=class_id,
            score=round(box.score, 4),
            top_score=round(obj.top_score, 4),
            box=Box(x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2),
            box_norm=Box(x1=box.x1 / width, y1=box.y1 / height, x2=box.x2 / width, y2=box.y2 / height),
            angle=None if box.obb is None else round(box.obb[4], 4),
            corners=None if box.obb is None else [(round(x, 1), round(y, 1)) for x, y in obb_corners(box.obb)],
            frame_width=obj.frame_width,
            frame_height=obj.frame_height,
            capture_time=obj.last_seen,
            pts=obj.pts,
            first_seen=obj.first_seen,
            last_seen=obj.last_seen,
            detect_time=obj.detect_time,
            publish_time=time.time(),
            model=self.model,
            end_reason=reason,
            geo=obj.geo,
            geo_fused=obj.geo_fused,
            geo_status=obj.geo_status,
            zones=list(box.zones),
            entered_zones=list(box.entered_zones),
            zone_time_s=dict(box.zone_time_s),
        )
        obj.seq += 1
        obj.reported_zones = list(box.zones)
        obj.reported_center = _center(obj)
        obj.reported_label, obj.reported_top, obj.reported_at = class_id, obj.top_score, obj.last_seen
        return event


def _center(obj: _Object) -> tuple[float, float]:
    assert obj.box is not None
    return (obj.box.x1 + obj.box.x2) / 2, (obj.box.y1 + obj.box.y2) / 2
