"""A source's detection settings: its priority (drones before fixed cameras by default), its detection rate cap
and weight, and its own `detector:` block, which overrides only the fields it gives."""

from __future__ import annotations

import pytest

from edge.config import ConfigError, parse_config

DRONE_GEO = {"telemetry": {"source": "klv"}}


def _config(*sources: dict, detector: dict | None = None) -> dict:
    data: dict = {"sources": list(sources)}
    if detector is not None:
        data["detector"] = detector
    return data


def test_a_drone_defaults_to_a_higher_priority_than_a_fixed_camera() -> None:
    config = parse_config(
        _config(
            {"name": "drone", "url": "udp://@:5600", "geo": DRONE_GEO},
            {"name": "gate", "url": "rtsp://cam/1"},
            {"name": "yard", "url": "rtsp://cam/2", "priority": 5},
        )
    )
    drone, gate, yard = config.sources
    assert drone.is_drone and not gate.is_drone
    assert drone.resolved_priority > gate.resolved_priority
    assert yard.resolved_priority == 5  # a configured priority wins over the default


def test_detector_override_replaces_only_the_fields_it_gives() -> None:
    config = parse_config(
        _config(
            {"name": "drone", "url": "a.mp4", "detector": {"model": "aerial.pt", "imgsz": 1024}},
            {"name": "gate", "url": "b.mp4"},
            detector={"model": "yolov8n.pt", "conf": 0.4, "classes": ["person", "car"]},
        )
    )
    drone = config.sources[0].detector_settings(config.detector)
    assert (drone.model, drone.imgsz) == ("aerial.pt", 1024)
    assert (drone.conf, drone.classes) == (0.4, ["person", "car"])  # the node's, not DetectorConfig's defaults
    assert config.sources[1].detector_settings(config.detector) == config.detector


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("priority", 10, r"sources\[0\]\.priority"),
        ("max_detection_fps", 0, r"sources\[0\]\.max_detection_fps"),
        ("detection_weight", -1, r"sources\[0\]\.detection_weight"),
        ("detector", {"imgsz": 100}, r"sources\[0\]\.detector\.imgsz"),
        ("detector", {"modle": "x.pt"}, r"sources\[0\]\.detector\.modle"),
    ],
)
def test_bad_detection_settings_name_the_field(field: str, value: object, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_config(_config({"name": "cam", "url": "a.mp4", field: value}))
