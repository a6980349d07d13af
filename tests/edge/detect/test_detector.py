"""The detector on real frames with real models: .pt and the int8 ONNX export, class filter, bad files."""

from __future__ import annotations

import av
import numpy as np
import pytest

from edge.assets import assets_root
from edge.config import DetectorConfig
from edge.detect.detector import Detector, ModelError


@pytest.fixture(scope="module")
def frame(media) -> np.ndarray:
    with av.open(str(media("vtest.avi"))) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index == 40:
                return decoded.to_ndarray(format="bgr24")
    raise AssertionError("vtest.avi too short")


@pytest.mark.parametrize("model_name", ["yolov8n.pt", "yolov8n_int8.onnx"])
def test_people_found_with_each_model_format(model_name, frame) -> None:
    root = assets_root()
    if root is None or not (root / "models" / model_name).exists():
        pytest.skip(f"{model_name} not in $SMARTEYE_ASSETS/models")
    detector = Detector(DetectorConfig(model=model_name, classes=["person"]))
    found = detector.detect(frame)
    assert len(found.xyxy) >= 3  # the frame shows several pedestrians
    assert set(found.cls.tolist()) == {0}
    height, width = frame.shape[:2]
    assert (found.xyxy[:, [0, 2]] <= width + 1).all() and (found.xyxy[:, [1, 3]] <= height + 1).all()


def test_unknown_class_and_bad_model_file_are_named(model_path, tmp_path) -> None:
    with pytest.raises(ModelError, match=r"detector.classes: 'persn' not among the classes of yolov8n.pt"):
        Detector(DetectorConfig(model=str(model_path), classes=["persn"]))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot load model .*broken.pt"):
        Detector(DetectorConfig(model=str(broken)))
