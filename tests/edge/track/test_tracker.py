"""Per-stream tracking with ultralytics ByteTrack: stable ids, boxes kept inside the frame."""

from __future__ import annotations

import numpy as np
import pytest
from ultralytics.engine.results import Boxes

from edge.config.tracking import TrackerConfig, TrackerType
from edge.detect.detector import Detections
from edge.track.tracker import StreamTracker

SIZE = (480, 640)  # height, width


def _detections(rows: list[list[float]]) -> Detections:
    data = np.array(rows, dtype=np.float32).reshape(-1, 6)  # x1 y1 x2 y2 conf cls
    boxes = Boxes(data, SIZE).cpu().numpy()
    return Detections(boxes.xyxy, boxes.conf, boxes.cls.astype(np.int64), boxes)


def test_ids_are_stable_and_boxes_stay_in_frame() -> None:
    image = np.zeros((*SIZE, 3), dtype=np.uint8)
    for kind in TrackerType:
        tracker = StreamTracker(TrackerConfig(type=kind))
        ids = set()
        # Two people; one walks fast off the left edge (its Kalman box would overshoot to x < 0).
        for step in range(12):
            x = 60 - step * 12
            rows = [[max(x, 0), 100, x + 40, 200, 0.9, 0], [400 + step, 120, 440 + step, 220, 0.85, 0]]
            tracks = tracker.update(_detections(rows), image)
            ids.update(t.track_id for t in tracks)
            for t in tracks:
                assert 0 <= t.x1 <= t.x2 <= SIZE[1] and 0 <= t.y1 <= t.y2 <= SIZE[0], (kind, t)
        assert ids == {1, 2}, (kind, ids)
        assert tracker.update(_detections([]), image) == []


def test_each_track_keeps_its_detections_score_and_class() -> None:
    """The tracker's output rows are ultralytics' undocumented layout (x1 y1 x2 y2 id score cls idx): if a
    release reorders them, scores and classes would silently swap; this test says so instead."""
    image = np.zeros((*SIZE, 3), dtype=np.uint8)
    for kind in TrackerType:
        tracker = StreamTracker(TrackerConfig(type=kind))
        for step in range(4):
            rows = [[100 + step, 100, 160 + step, 220, 0.91, 0], [400, 120 + step, 470, 200 + step, 0.77, 2]]
            tracks = tracker.update(_detections(rows), image)
        by_class = {t.class_id: t for t in tracks}
        assert set(by_class) == {0, 2}, (kind, tracks)
        assert by_class[0].score == pytest.approx(0.91, abs=1e-3) and by_class[0].x1 < 200, (kind, by_class[0])
        assert by_class[2].score == pytest.approx(0.77, abs=1e-3) and by_class[2].x1 > 350, (kind, by_class[2])
