"""Sliced detection of one stream's frames: the chosen tiles run as one batch, merged with the other tiles'
latest boxes and an optional whole-frame pass, into the Detections the tracker reads."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.config.detector import SlicingConfig
from edge.detect.slicing import TilePlan, merge_boxes, shift_rows

if TYPE_CHECKING:
    from edge.detect.detector import Detections, Detector


class Slicer:
    """Tiles for every stream of one detector; each stream keeps its own grid and turn (streams differ in size)."""

    def __init__(self, detector: Detector, config: SlicingConfig) -> None:
        self.detector = detector
        self.config = config
        self._plans: dict[str, TilePlan] = {}
        self._lock = threading.Lock()

    def plan(self, stream: str, width: int, height: int) -> TilePlan:
        """The stream's tile plan, rebuilt when its frame size changes (a source reconnecting at another size)."""
        with self._lock:
            plan = self._plans.get(stream)
            if plan is None or plan.size != (width, height):
                config = self.config
                plan = TilePlan(width, height, config.tile, config.overlap, config.max_tiles_per_frame)
                self._plans[stream] = plan
            return plan

    def detect(self, stream: str, image: np.ndarray, timings: dict[str, float] | None = None) -> Detections:
        """Detections of the whole frame from its tiles; `timings["tile"]` gets the mean seconds per tile."""
        height, width = image.shape[:2]
        config, detector = self.config, self.detector
        if width <= config.tile and height <= config.tile:
            return detector.detect(image)  # one tile would be the frame itself
        plan = self.plan(stream, width, height)
        chosen = plan.next_tiles()
        corners = plan.tiles[chosen]
        started = time.perf_counter()
        results = detector.predict([image[y1:y2, x1:x2] for x1, y1, x2, y2 in corners], imgsz=config.tile)
        if timings is not None:
            timings["tile"] = (time.perf_counter() - started) / len(chosen)
        oriented = detector.oriented
        for index, (x1, y1, _, _), result in zip(chosen, corners, results, strict=True):
            plan.store(index, shift_rows(_rows(result, oriented), float(x1), float(y1), oriented))
        parts = plan.rows()
        if config.full_frame:
            parts.append(_rows(detector.predict(image)[0], oriented))
        rows = np.concatenate(parts) if parts else np.zeros((0, 7 if oriented else 6), dtype=np.float32)
        merged = _merge(rows, oriented, config.merge_threshold)
        detections = detector.detections(_boxes(merged, oriented, (height, width)))
        detections.tiles = len(chosen)
        return detections


def _rows(result: Any, oriented: bool) -> np.ndarray:
    """A result's rows as ultralytics stores them: x1 y1 x2 y2 conf cls, or cx cy w h r conf cls."""
    return (result.obb if oriented else result.boxes).data.cpu().numpy().astype(np.float32)


def _merge(rows: np.ndarray, oriented: bool, threshold: float) -> np.ndarray:
    """One row per object: axis-aligned boxes grow to their group's union; oriented ones keep the best box."""
    if len(rows) == 0:
        return rows
    if oriented:
        from ultralytics.utils.ops import xywhr2xyxyxyxy

        corners = xywhr2xyxyxyxy(rows[:, :5])
        hull = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
        kept, _ = merge_boxes(hull, rows[:, 5], rows[:, 6], threshold)
        return rows[kept]
    kept, union = merge_boxes(rows[:, :4], rows[:, 4], rows[:, 5], threshold)
    out = rows[kept].copy()
    out[:, :4] = union
    return out


def _boxes(rows: np.ndarray, oriented: bool, shape: tuple[int, int]) -> Any:
    """The ultralytics Boxes / OBB object the tracker reads, from merged rows."""
    from ultralytics.engine.results import OBB, Boxes

    return OBB(rows, shape) if oriented else Boxes(rows, shape)
