"""The tracked objects the rules see: each one's last box and label, which zone or line filter it passes, and
when it is forgotten.

An object missing from a frame (occluded, or its track lost) is not forgotten at once: zones count its absence
against their inertia, lines keep the side it was on. After `forget_after_s` without a sighting (the events
stage's `end_after_s`, so rules and events agree on when an object is gone) everything about it is dropped,
which bounds the state by the objects alive, not by time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.track.tracker import TrackedBox
from smarteye.wire.messages import AlertObject, Box
from smarteye.wire.rules import ObjectFilter


@dataclass(slots=True)
class SeenObject:
    """One object as last seen, and its zone history over its life."""

    box: TrackedBox
    label: str
    last_seen: float
    width: int
    height: int
    entered_zones: list[str] = field(default_factory=list)
    zone_time_s: dict[str, float] = field(default_factory=dict)

    def describe(self, time_in_zone_s: float | None = None) -> AlertObject:
        """The object as an alert reports it (its last box, even while it is missing)."""
        b, w, h = self.box, self.width or 1, self.height or 1
        return AlertObject(
            track_id=b.track_id, label=self.label, score=round(min(max(b.score, 0.0), 1.0), 4),
            box=Box(x1=b.x1, y1=b.y1, x2=b.x2, y2=b.y2),
            box_norm=Box(x1=b.x1 / w, y1=b.y1 / h, x2=b.x2 / w, y2=b.y2 / h),
            geo=b.geo, time_in_zone_s=round(time_in_zone_s, 3) if time_in_zone_s is not None else None,
        )  # fmt: skip


def passes(rule_filter: ObjectFilter, box: TrackedBox, label: str) -> bool:
    """Whether one sighting counts for a zone or line: label, score, size in pixels and on the ground.
    (Time and frames present, and inertia, are the zone's business: they need the object's history.)"""
    if rule_filter.labels is not None and label not in rule_filter.labels:
        return False
    if box.score < rule_filter.min_score:
        return False
    if min(box.x2 - box.x1, box.y2 - box.y1) < rule_filter.min_size_px:
        return False
    return rule_filter.min_size_m is None or (box.size_m is not None and box.size_m >= rule_filter.min_size_m)


class ObjectRegistry:
    """The objects of one stream by track id, as of the latest frame."""

    def __init__(self, names: Mapping[int, str], forget_after_s: float) -> None:
        self.names = dict(names)
        self.forget_after_s = forget_after_s
        self.objects: dict[int, SeenObject] = {}

    def __len__(self) -> int:
        return len(self.objects)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self.objects

    def get(self, track_id: int) -> SeenObject | None:
        return self.objects.get(track_id)

    def label(self, box: TrackedBox) -> str:
        return self.names.get(box.class_id, str(box.class_id))

    def observe(self, now: float, boxes: list[TrackedBox], width: int, height: int) -> dict[int, SeenObject]:
        """Record this frame's sightings; returns the objects forgotten (unseen for longer than forget_after_s),
        as they were last seen, so a situation they leave can still show them."""
        for box in boxes:
            seen = self.objects.get(box.track_id)
            if seen is None:
                self.objects[box.track_id] = SeenObject(box, self.label(box), now, width, height)
            else:
                seen.box, seen.label, seen.last_seen, seen.width, seen.height = box, self.label(box), now, width, height
        gone = [tid for tid, seen in self.objects.items() if now - seen.last_seen > self.forget_after_s]
        return {tid: self.objects.pop(tid) for tid in gone}

    def entered(self, track_id: int, zone: str) -> None:
        seen = self.objects.get(track_id)
        if seen is not None and zone not in seen.entered_zones:
            seen.entered_zones.append(zone)
