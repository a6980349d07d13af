"""Tracking stage: multi-object tracking per stream with ultralytics' ByteTrack / BoT-SORT (ids are
per tracker, so each stream numbers its own objects)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.config.tracking import TrackerConfig, TrackerType
from edge.detect.detector import Detections

if TYPE_CHECKING:
    from edge.frame import Frame
    from smarteye.wire.messages import GeoPosition


@dataclass(slots=True)
class TrackedBox:
    """One tracked object in one frame; `geo` is its footpoint's ground position once located (and `size_m` its
    ground width), the zone fields are set by the rules stage."""

    track_id: int
    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    geo: GeoPosition | None = None
    geo_fused: GeoPosition | None = None  # over the track's life so far (edge/geo/fusion.py)
    size_m: float | None = None
    zones: list[str] = field(default_factory=list)
    """Zones it is in now (after each zone's filters, min time/frames and inertia)."""
    entered_zones: list[str] = field(default_factory=list)
    """Every zone it has been in during its life, in order of entry."""
    zone_time_s: dict[str, float] = field(default_factory=dict)
    """Seconds it has spent in each zone it entered."""
    obb: tuple[float, float, float, float, float] | None = None
    """The oriented box (centre x, y, width, height, rotation in radians) from an OBB model; x1…y2 are then
    its axis-aligned hull, which every other stage reads."""


def obb_corners(obb: tuple[float, float, float, float, float]) -> list[tuple[float, float]]:
    """The four corners (pixels) of an oriented box, in order around it (ultralytics' xywhr convention)."""
    cx, cy, w, h, r = obb
    cos, sin = math.cos(r), math.sin(r)
    ax, ay = w / 2 * cos, w / 2 * sin  # half the width side
    bx, by = -h / 2 * sin, h / 2 * cos  # half the height side
    return [(cx + ax + bx, cy + ay + by), (cx + ax - bx, cy + ay - by), (cx - ax - bx, cy - ay - by),
            (cx - ax + bx, cy - ay + by)]  # fmt: skip


class StreamTracker:
    """Assigns stable ids to one stream's detections, frame after frame."""

    name = "tracking"

    def __init__(self, config: TrackerConfig) -> None:
        # Imported here, not at the top: ultralytics brings torch (seconds to import), which the many modules
        # that only need TrackedBox (rules, geolocation, video annotation) and their processes do not.
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        args = IterableSimpleNamespace(
            tracker_type=config.type.value,
            track_high_thresh=config.track_high_thresh,
            track_low_thresh=config.track_low_thresh,
            new_track_thresh=config.new_track_thresh,
            track_buffer=config.track_buffer,
            match_thresh=config.match_thresh,
            fuse_score=True,
            # BoT-SORT extras: no appearance model (CPU budget); motion compensation off, because
            # latest-frame-wins gaps make optical flow between processed frames unreliable.
            gmc_method="none",
            proximity_thresh=0.5,
            appearance_thresh=0.8,
            with_reid=False,
            model="auto",
        )
        self._tracker = BOTSORT(args) if config.type is TrackerType.BOTSORT else BYTETracker(args)

    def update(self, detections: Detections, image: np.ndarray | None = None) -> list[TrackedBox]:
        rows = self._tracker.update(detections.boxes, image)
        if len(rows) == 0:
            return []
        if rows.shape[1] == 9:  # oriented boxes: cx cy w h angle, id, score, class, index
            return _oriented(rows, image)
        if image is not None:
            # Tracks report Kalman-filtered boxes, which can overshoot the frame edge.
            height, width = image.shape[:2]
            np.clip(rows[:, 0:4:2], 0, width, out=rows[:, 0:4:2])
            np.clip(rows[:, 1:4:2], 0, height, out=rows[:, 1:4:2])
        return [
            TrackedBox(int(r[4]), float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[5]), int(r[6]))
            for r in rows
        ]

    def process(self, frame: Frame) -> Frame:
        """Stage: the frame's detections become its tracks."""
        assert frame.detections is not None, "the detection stage runs before tracking"
        frame.tracks = self.update(frame.detections, frame.bgr())
        return frame


def _oriented(rows: np.ndarray, image: np.ndarray | None) -> list[TrackedBox]:
    """Tracked oriented boxes, with their axis-aligned hull (clipped to the frame) as x1…y2."""
    from ultralytics.utils.ops import xywhr2xyxyxyxy

    corners = xywhr2xyxyxyxy(rows[:, :5].astype(np.float32))
    hull = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    if image is not None:
        height, width = image.shape[:2]
        np.clip(hull[:, 0:4:2], 0, width, out=hull[:, 0:4:2])
        np.clip(hull[:, 1:4:2], 0, height, out=hull[:, 1:4:2])
    return [
        TrackedBox(
            int(r[5]), float(h[0]), float(h[1]), float(h[2]), float(h[3]), float(r[6]), int(r[7]),
            obb=(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4])),
        )
        for r, h in zip(rows, hull, strict=True)
    ]  # fmt: skip
