"""Sliced detection of one stream's frames: the chosen tiles run as one batch, merged with the other tiles'
latest boxes and an optional whole-frame pass, into the Detections the tracker reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.config.detector import SlicingConfig
from edge.detect.slicing import TilePlan, merge_boxes, shift_rows

if TYPE_CHECKING:
    from edge.detect.detector import Detections, Detector


# A ground-sized tile is re-gridded only when the wanted size moves this much (altitude drifts slowly; a new grid
# drops every tile's stored boxes).
RESIZE_HYSTERESIS = 0.2


class Slicer:
    """Tiles for every stream of one detector; each stream keeps its own grid and turn (streams differ in size)."""

    def __init__(self, detector: Detector, config: SlicingConfig) -> None:
        self.detector = detector
        self.config = config
        self.ground_sample_distance: dict[str, Callable[[int, int], float | None]] = {}
        """Per geolocated stream: metres per pixel at the frame centre for a frame size (set by the factory)."""
        self._plans: dict[str, TilePlan] = {}
        self._lock = threading.Lock()

    def tile_pixels(self, stream: str, width: int, height: int) -> int:
        """The tile side in pixels: `tile_m` over the stream's ground sample distance when both are known
        (a multiple of 32 within [64, the frame's longer side]), else `tile`."""
        config = self.config
        measure = self.ground_sample_distance.get(stream)
        metres_per_pixel = measure(width, height) if config.tile_m is not None and measure is not None else None
        if not metres_per_pixel:
            return config.tile
        pixels = round(config.tile_m / metres_per_pixel / 32) * 32  # type: ignore[operator]
        return int(min(max(pixels, 64), max(width, height)))

    def plan(self, stream: str, width: int, height: int, tile: int | None = None) -> TilePlan:
        """The stream's tile plan, rebuilt when its frame size changes (a source reconnecting at another size) or
        its ground-sized tile moved by more than RESIZE_HYSTERESIS."""
        tile = self.config.tile if tile is None else tile
        with self._lock:
            plan = self._plans.get(stream)
            if plan is None or plan.size != (width, height) or abs(plan.tile - tile) > RESIZE_HYSTERESIS * plan.tile:
                config = self.config
                plan = TilePlan(width, height, tile, config.overlap, config.max_tiles_per_frame)
                self._plans[stream] = plan
            return plan

    def detect(self, stream: str, image: np.ndarray, timings: dict[str, float] | None = None) -> Detections:
        """Detections of the whole frame from its tiles; `timings["tile"]` gets the mean seconds per tile."""
        height, width = image.shape[:2]
        config, detector = self.config, self.detector
        tile = self.tile_pixels(stream, width, height)
        if width <= tile and height <= tile:
            return detector.detect(image)  # one tile would be the frame itself
        plan = self.plan(stream, width, height, tile)
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
