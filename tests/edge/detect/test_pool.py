"""The detector pool with the real small model: streams with the same runtime share one loaded model and still
apply their own thresholds and classes; other runtime settings load separately; per-stream overrides from the
config end up in the right stream's detector."""

from __future__ import annotations

import av
import numpy as np
import pytest

from edge.config import DetectorConfig, parse_config
from edge.detect.detector import ModelError
from edge.detect.pool import DetectorPool, runtime_key


@pytest.fixture(scope="module")
def frame(media) -> np.ndarray:
    with av.open(str(media("vtest.avi"))) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index == 40:
                return decoded.to_ndarray(format="bgr24")
    raise AssertionError("vtest.avi too short")


def test_same_runtime_is_loaded_once_and_each_stream_keeps_its_thresholds(model_path, frame) -> None:
    pool = DetectorPool()
    people = pool.get(DetectorConfig(model=str(model_path), classes=["person"], conf=0.25))
    sure = pool.get(DetectorConfig(model=str(model_path), conf=0.6))
    assert people is not sure and people.model is sure.model
    assert pool.runtimes == 1
    assert pool.get(DetectorConfig(model=str(model_path), conf=0.6)) is sure  # equal settings: the same detector

    found_people = people.detect(frame)
    found_sure = sure.detect(frame)
    assert len(found_people.cls) >= 3 and set(found_people.cls.tolist()) == {0}
    assert len(found_sure.conf) >= 1 and (found_sure.conf >= 0.6).all()
    assert len(found_sure.conf) < len(found_people.conf) + 5  # a stricter threshold, not the other stream's
    again = people.detect(frame)  # the shared model was not left with the other stream's arguments
    assert np.array_equal(again.cls, found_people.cls) and np.allclose(again.xyxy, found_people.xyxy)


def test_a_different_input_size_loads_its_own_runtime(model_path) -> None:
    pool = DetectorPool()
    small = pool.get(DetectorConfig(model=str(model_path), imgsz=320))
    large = pool.get(DetectorConfig(model=str(model_path), imgsz=640))
    assert small.model is not large.model and pool.runtimes == 2


def test_runtime_key_resolves_the_model_path(model_path, tmp_path, monkeypatch) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "pool-test.pt").symlink_to(model_path)
    monkeypatch.setenv("SMARTEYE_ASSETS", str(tmp_path))
    by_name = runtime_key(DetectorConfig(model="pool-test.pt", conf=0.3))
    by_path = runtime_key(DetectorConfig(model=str(tmp_path / "models" / "pool-test.pt"), conf=0.5, classes=["car"]))
    assert by_name == by_path
    assert by_name != runtime_key(DetectorConfig(model="pool-test.pt", imgsz=320))


def test_per_stream_override_from_the_config(model_path, frame) -> None:
    config = parse_config(
        {
            "detector": {"model": str(model_path), "conf": 0.3},
            "sources": [
                {"name": "drone", "url": "a.mp4", "detector": {"imgsz": 320, "classes": ["person"]}},
                {"name": "gate", "url": "b.mp4"},
                {"name": "yard", "url": "c.mp4", "detector": {"conf": 0.5}},
            ],
        }
    )
    pool = DetectorPool()
    drone, gate, yard = (pool.get(source.detector_settings(config.detector)) for source in config.sources)
    assert drone.config.imgsz == 320 and drone.class_ids == [0] and drone.config.conf == 0.3
    assert gate.config == config.detector
    assert yard.model is gate.model and yard.predict_args["conf"] == 0.5
    assert pool.runtimes == 2


def test_an_override_with_an_unknown_class_is_named(model_path) -> None:
    with pytest.raises(ModelError, match=r"'plane' not among the classes of yolov8n.pt"):
        DetectorPool().get(DetectorConfig(model=str(model_path), classes=["plane"]))
