"""Parallel OpenVINO infer requests (edge/detect/openvino_requests.py), the one place that reaches into
ultralytics' OpenVINO backend: pinned here so an ultralytics upgrade that moves the internal fails loudly, and
checked to give exactly the detections of ultralytics' own LATENCY-compiled model, also from two threads at once."""

from __future__ import annotations

import inspect
import threading

import av
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.detect import openvino_requests
from edge.detect.detector import Detector


@pytest.fixture(scope="module")
def frames(media) -> list[np.ndarray]:
    with av.open(str(media("vtest.avi"))) as container:
        decoded = [f.to_ndarray(format="bgr24") for _, f in zip(range(48), container.decode(video=0), strict=False)]
    return decoded[::6]  # 8 frames, people moving between them


@pytest.fixture(scope="module")
def detector(model_path) -> Detector:
    return Detector(DetectorConfig(model=str(model_path), backend="openvino"))


def _rows(detector: Detector, image: np.ndarray, model=None) -> np.ndarray:
    """Boxes, scores and classes of one frame, on the given YOLO object (default: the detector's slots)."""
    if model is None:
        found = detector.detect(image)
        return np.column_stack([found.xyxy, found.conf, found.cls])
    boxes = model.predict(image, **detector.predict_args)[0].boxes.cpu().numpy()
    return np.column_stack([boxes.xyxy, boxes.conf, boxes.cls])


def test_the_ultralytics_internal_used_is_still_there() -> None:
    """The pin: ultralytics' OpenVINO backend infers by calling `self.ov_compiled_model(im)`; the replicas swap that
    attribute for their own infer request. If this fails after an upgrade, revisit openvino_requests.py."""
    from ultralytics.nn.backends.openvino import OpenVINOBackend

    assert "self.ov_compiled_model(im)" in inspect.getsource(OpenVINOBackend.forward)


def test_parallel_requests_give_the_loaded_models_detections(detector: Detector, frames) -> None:
    expected = [_rows(detector, image, detector.model) for image in frames]  # ultralytics' LATENCY model
    count = detector.parallelize()
    compiled = detector.slots.compiled
    if count == 1:
        pytest.skip("this CPU's plugin offers one stream only: nothing runs in parallel")
    assert (
        count == detector.slots.count == openvino_requests.optimal_requests(compiled) <= openvino_requests.MAX_STREAMS
    )
    assert str(compiled.get_property("PERFORMANCE_HINT")).endswith(openvino_requests.HINT)
    assert detector.parallelize() == count  # once: a second call changes nothing
    assert str(detector.model.predictor.model.backend.ov_compiled_model.get_property("PERFORMANCE_HINT")).endswith(
        "LATENCY"
    )  # the loaded model stays as ultralytics compiled it (the benchmarks' bare runs use it)
    for image, rows in zip(frames, expected, strict=True):
        np.testing.assert_allclose(_rows(detector, image), rows, atol=1e-3)

    results: dict[int, np.ndarray] = {}

    def work(indices: range) -> None:
        for index in indices:
            results[index] = _rows(detector, frames[index])

    threads = [threading.Thread(target=work, args=(range(start, len(frames), 2),)) for start in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == list(range(len(frames)))
    for index, rows in enumerate(expected):  # two frames in flight at once: no request mixes up another's frame
        np.testing.assert_allclose(results[index], rows, atol=1e-3)


def test_other_runtimes_and_sliced_detection_infer_one_frame_at_a_time(model_path) -> None:
    onnx = Detector(DetectorConfig(model=str(model_path), backend="onnx"))
    assert onnx.parallelize() == 1 and onnx.slots.count == 1 and onnx.slots.compiled is None
    sliced = Detector(DetectorConfig(model=str(model_path), backend="openvino", imgsz=320, slicing={"tile": 320}))
    assert sliced.parallelize() == 1 and sliced.slots.count == 1


def test_bind_says_so_when_a_model_has_no_openvino_backend(model_path) -> None:
    from ultralytics import YOLO

    assert openvino_requests.bind(YOLO(str(model_path)), object()) is False  # no predictor: nothing to swap


def test_detectors_sharing_a_loaded_model_share_its_slots(detector: Detector, model_path) -> None:
    """The pool's streams that differ only in thresholds run on one runtime: its predictors are checked out from one
    set of slots, so two detection workers never predict on the same ultralytics predictor at once."""
    stricter = Detector(DetectorConfig(model=str(model_path), backend="openvino", conf=0.6), model=detector.model)
    assert stricter.slots is detector.slots
    assert stricter.parallelize() == detector.parallelize()
