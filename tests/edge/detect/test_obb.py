"""Oriented boxes (OBB models) on real frames: detection, tiles, tracking with angles, events, drawing.

No DOTA-trained `yolov8n-obb.pt` can be downloaded here, so the models are built offline from the COCO
weights (tests/support/obb_model.py): at angle 0 an OBB model must find exactly the detect model's boxes,
which checks the decoding; at angle θ every box turns by θ, which shows the angle travelling through
tracking, events and drawing. Neither says anything about aerial accuracy (scripts/aerial_accuracy.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from edge.config.detector import DetectorConfig, SlicingConfig
from edge.config.tracking import EventsConfig, TrackerConfig
from edge.config.video import AnnotationConfig
from edge.detect.detector import Detector, ModelError
from edge.frame import Frame
from edge.outputs.video.annotate import PALETTE, Annotator
from edge.track.lifecycle import EventLifecycle
from edge.track.tracker import StreamTracker, obb_corners
from smarteye.wire.messages import DetectionEvent
from tests.support.obb_model import build_obb_model

THETA = 0.4  # radians, ~23°
# The models are rebuilt per session (new bytes, new export cache key): run them as they are, on PyTorch; the
# exported runtime of an OBB model is checked once, in the slow test at the end.
TORCH: dict[str, str] = {"backend": "torch"} if "backend" in DetectorConfig.model_fields else {}


@pytest.fixture(scope="module")
def obb_models(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    folder = tmp_path_factory.mktemp("obb")
    return {angle: build_obb_model(model_path, folder / f"obb_{angle}.pt", angle) for angle in (0.0, THETA)}


@pytest.fixture(scope="module")
def street_frames(media) -> list[np.ndarray]:
    """Ten consecutive frames (from the 40th) of a real elevated site camera (768×576), people walking."""
    with av.open(str(media("vtest.avi"))) as container:
        frames = []
        for index, frame in enumerate(container.decode(video=0)):
            if index >= 40:
                frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == 10:
                return frames
    return frames


def half_turn(angle: np.ndarray, expected: float) -> np.ndarray:
    """Distance of angles from `expected`, modulo the quarter turns of a rectangle's equivalent forms."""
    d = np.mod(angle - expected, math.pi / 2)
    return np.minimum(d, math.pi / 2 - d)


def test_an_obb_model_loads_as_obb_and_at_angle_zero_finds_the_detect_models_boxes(
    model_path: Path, obb_models: dict[float, Path], street_frames: list[np.ndarray]
) -> None:
    oriented = Detector(DetectorConfig(model=str(obb_models[0.0]), **TORCH))
    plain = Detector(DetectorConfig(model=str(model_path), **TORCH))
    assert oriented.oriented and not plain.oriented and oriented.names == plain.names
    found, reference = oriented.detect(street_frames[0]), plain.detect(street_frames[0])
    assert len(reference.xyxy) >= 3 and found.xywhr is not None and found.xywhr.shape == (len(found.xyxy), 5)
    assert half_turn(found.xywhr[:, 4], 0.0).max() < 1e-3
    order_a, order_b = np.argsort(-found.conf), np.argsort(-reference.conf)
    assert len(found.xyxy) == len(reference.xyxy)
    assert np.allclose(found.xyxy[order_a], reference.xyxy[order_b], atol=1.0)
    assert (found.cls[order_a] == reference.cls[order_b]).all()


def test_tracks_events_and_the_drawing_carry_the_angle(
    obb_models: dict[float, Path], street_frames: list[np.ndarray]
) -> None:
    detector = Detector(DetectorConfig(model=str(obb_models[THETA]), **TORCH))
    tracker = StreamTracker(TrackerConfig())
    lifecycle = EventLifecycle("n1", "drone1", detector.model_name, detector.names, EventsConfig(min_hits=3))
    events: list[DetectionEvent] = []
    for seq, image in enumerate(street_frames):
        frame = Frame.from_bgr("drone1", seq, 1000.0 + seq / 10, seq / 10, image)
        detector.process(frame)
        assert frame.detections is not None and frame.detections.xywhr is not None
        assert half_turn(frame.detections.xywhr[:, 4], THETA).max() < 1e-3, "every box turned by θ"
        tracker.process(frame)
        events += lifecycle.process(frame).events
    tracks = frame.tracks
    assert len(tracks) >= 3
    for box in tracks:
        assert box.obb is not None and half_turn(np.array([box.obb[4]]), THETA)[0] < 0.05
        corners = np.array(obb_corners(box.obb))
        hull = [*corners.min(axis=0).clip(0), *corners.max(axis=0)]
        assert np.allclose([box.x1, box.y1], hull[:2], atol=0.5), "x1…y2 is the oriented box's hull"
        assert box.x2 <= 768 and box.y2 <= 576

    assert events, "confirmed objects give events"
    for event in events:
        again = DetectionEvent.model_validate_json(event.model_dump_json())  # the wire form keeps them
        assert again.angle is not None and half_turn(np.array([again.angle]), THETA)[0] < 0.05
        assert again.corners is not None and len(again.corners) == 4
        xs, ys = [x for x, _ in again.corners], [y for _, y in again.corners]
        assert min(xs) <= again.box.x1 + 1 and max(xs) >= again.box.x2 - 1
        assert min(ys) <= again.box.y1 + 1 and max(ys) >= again.box.y2 - 1

    # Drawn: the rotated outline, not the axis-aligned hull.
    canvas = np.zeros_like(street_frames[-1])
    Annotator(AnnotationConfig(labels=False, line_width=2), detector.names).draw(canvas, tracks)
    box = max(tracks, key=lambda b: b.obb[2] * b.obb[3])  # type: ignore[index]
    colour = PALETTE[box.class_id % len(PALETTE)]
    corners = np.array(obb_corners(box.obb))  # type: ignore[arg-type]
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        x, y = np.round((a + b) / 2).astype(int)
        if 2 <= x < canvas.shape[1] - 2 and 2 <= y < canvas.shape[0] - 2:
            patch = canvas[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)
            assert any(tuple(int(v) for v in p) == colour for p in patch), "each side's midpoint is on the outline"
    x1, y1 = math.ceil(box.x1) + 1, math.ceil(box.y1) + 1
    assert not canvas[y1, x1].any(), "the hull's corner lies outside a turned box: left undrawn"


def test_tiles_of_an_obb_model_merge_into_oriented_boxes(
    obb_models: dict[float, Path], street_frames: list[np.ndarray]
) -> None:
    detector = Detector(
        DetectorConfig(
            model=str(obb_models[THETA]), slicing=SlicingConfig(tile=384, overlap=0.25, full_frame=False), **TORCH
        )
    )
    found = detector.slicer.detect("s", street_frames[0])  # type: ignore[union-attr]
    assert found.tiles == 6  # 768×576 in 384 px tiles: 3 columns, 2 rows
    assert found.xywhr is not None and len(found.xywhr) >= 3
    assert half_turn(found.xywhr[:, 4], THETA).max() < 1e-3
    centres = found.xywhr[:, :2]
    distances = np.linalg.norm(centres[:, None] - centres[None, :], axis=2) + np.eye(len(centres)) * 1e9
    assert distances.min() > 5, "no object twice after merging the tiles' boxes"
    assert (found.xyxy[:, 0] < found.xywhr[:, 0]).all() and (found.xyxy[:, 2] > found.xywhr[:, 0]).all()


@pytest.mark.e2e
@pytest.mark.slow  # exports the model (OpenVINO by default on a CPU): ~30 s on a quiet 2-core machine
def test_an_exported_obb_model_gives_the_same_oriented_boxes(
    obb_models: dict[float, Path], street_frames: list[np.ndarray]
) -> None:
    if not TORCH:
        pytest.skip("no detector.backend setting: nothing is exported")
    pt = Detector(DetectorConfig(model=str(obb_models[THETA]), **TORCH))
    exported = Detector(DetectorConfig(model=str(obb_models[THETA]), backend="auto"))
    assert exported.oriented and exported.backend != "torch"
    a, b = pt.detect(street_frames[0]), exported.detect(street_frames[0])
    assert a.xywhr is not None and b.xywhr is not None and len(b.xywhr) >= 3
    assert half_turn(b.xywhr[:, 4], THETA).max() < 1e-2
    # The export runs a square 640 input where PyTorch letterboxes to 640×480: weak boxes come and go, the
    # confident ones are the same objects.
    sure = a.xyxy[a.conf >= 0.5]
    assert len(sure) >= 2
    found = 0
    for box in sure:
        overlap = np.minimum(box[2:], b.xyxy[:, 2:]) - np.maximum(box[:2], b.xyxy[:, :2])
        inter = np.clip(overlap, 0, None).prod(axis=1)
        union = (box[2:] - box[:2]).prod() + (b.xyxy[:, 2:] - b.xyxy[:, :2]).prod(axis=1) - inter
        found += (inter / union).max() > 0.8
    assert found >= 0.75 * len(sure), f"{found} of {len(sure)} confident boxes"


def test_the_dota_obb_model_is_fetched_by_name_like_yolov8n(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`model: yolov8n-obb.pt` goes to ultralytics' own download of its release asset when no such file is found
    (models/, $SMARTEYE_ASSETS/models). With internet it loads as an oriented model; offline (these machines) the
    error names the file and the official URL it tried, so a user knows what to fetch and where to put it."""
    monkeypatch.chdir(tmp_path)  # ultralytics saves a download into the working directory
    try:
        detector = Detector(DetectorConfig(model="yolov8n-obb.pt", backend="torch"))
    except ModelError as error:
        assert "yolov8n-obb.pt" in str(error)
        assert "github.com/ultralytics/assets/releases/download/" in str(error), error
        return
    assert detector.oriented
    assert {"small vehicle", "large vehicle"} <= set(detector.names.values())
