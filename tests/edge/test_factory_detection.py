"""Building the node with per-stream detection settings: each stream's stages run its own detector (the node's or
its override), streams that share a runtime share the loaded model, a stream's events name its own model, and the
board's scheduler holds each stream's priority, rate cap and weight."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import parse_config
from edge.detect.detector import Detector
from edge.factory import build_node


def _config(model: Path, tmp_path: Path, *sources: dict):
    return parse_config({
        "sources": list(sources), "detector": {"model": str(model), "conf": 0.3}, "video": {"enabled": False},
        "metrics": {"enabled": False}, "mqtt": {"spool_dir": str(tmp_path)},
    })  # fmt: skip


def _detector(node, stream: str) -> Detector:
    found = next(stage for stage in node.pipeline.stages[stream] if stage.name == "inference")
    assert isinstance(found, Detector)
    return found


def test_streams_run_their_own_detector_and_share_the_runtime(model_path, tmp_path) -> None:
    node = build_node(_config(
        model_path, tmp_path,
        {"name": "drone", "url": "a.mp4", "geo": {"telemetry": {"source": "klv"}},
         "detector": {"classes": ["car", "truck"], "conf": 0.2}, "max_detection_fps": 5},
        {"name": "gate", "url": "b.mp4", "detection_weight": 2},
        {"name": "yard", "url": "c.mp4", "priority": 0},
        {"name": "small", "url": "d.mp4", "detector": {"imgsz": 320}},
    ))  # fmt: skip
    drone, gate, yard, small = (_detector(node, name) for name in ("drone", "gate", "yard", "small"))
    assert gate is yard  # the node's settings: one detector
    assert drone is not gate and drone.model is gate.model  # same runtime, own thresholds and classes
    assert drone.predict_args["conf"] == 0.2 and drone.predict_args["classes"] == [2, 7]
    assert gate.predict_args["conf"] == 0.3 and gate.class_ids is None
    assert small.model is not gate.model and small.predict_args["imgsz"] == 320

    policies = node.board.scheduler.policies
    assert (policies["drone"].priority, policies["drone"].max_fps) == (2, 5.0)  # a drone goes first by default
    assert (policies["gate"].priority, policies["gate"].weight) == (1, 2.0)
    assert policies["yard"].priority == 0


def test_a_given_detector_serves_the_streams_without_an_override(model_path, tmp_path) -> None:
    config = _config(
        model_path, tmp_path, {"name": "a", "url": "a.mp4"}, {"name": "b", "url": "b.mp4", "detector": {"conf": 0.6}}
    )
    given = Detector(config.detector)
    node = build_node(config, detector=given)
    assert _detector(node, "a") is given
    assert _detector(node, "b").model is given.model and _detector(node, "b").predict_args["conf"] == 0.6


def test_a_stream_with_another_model_loads_it_and_names_it_in_its_events(model_path, tmp_path) -> None:
    other = model_path.parent / "yolo11n.pt"
    if not other.exists():
        pytest.skip("yolo11n.pt not in $SMARTEYE_ASSETS/models")
    node = build_node(_config(
        model_path, tmp_path,
        {"name": "drone", "url": "a.mp4", "detector": {"model": str(other)}},
        {"name": "gate", "url": "b.mp4"},
    ))  # fmt: skip
    drone, gate = _detector(node, "drone"), _detector(node, "gate")
    assert drone.model is not gate.model
    assert node.streams["drone"].lifecycle.model == "yolo11n.pt"
    assert node.streams["gate"].lifecycle.model == "yolov8n.pt"


def test_the_live_video_labels_each_stream_with_its_own_models_names(model_path, tmp_path) -> None:
    other = model_path.parent / "yolo11n.pt"
    if not other.exists():
        pytest.skip("yolo11n.pt not in $SMARTEYE_ASSETS/models")
    config = parse_config({
        "sources": [{"name": "drone", "url": "a.mp4", "detector": {"model": str(other)}},
                    {"name": "gate", "url": "b.mp4"}],
        "detector": {"model": str(model_path)}, "video": {"whep": {"port": 0}},
        "metrics": {"enabled": False}, "mqtt": {"spool_dir": str(tmp_path)},
    })  # fmt: skip
    node = build_node(config)  # built, not started: no port is taken
    assert node.video is not None
    assert node.video.annotators["drone"].class_names is _detector(node, "drone").names
    assert node.video.annotators["gate"].class_names is _detector(node, "gate").names
