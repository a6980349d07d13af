"""The detector's runtime: auto picks OpenVINO here and exports the .pt once (cached, reused, repaired when
broken), ONNX Runtime works, a missing runtime or an unknown backend is named, ultralytics never pip-installs.

The OpenVINO and ONNX exports of yolov8n.pt land in the real user cache, as on a user's machine: the first test
run on a machine exports them (~10-30 s each), every later run loads them."""

from __future__ import annotations

import logging
import shutil

import av
import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import ConfigError, DetectorConfig, parse_config
from edge.detect import export as export_module
from edge.detect import runtime
from edge.detect.detector import Detector, ModelError
from edge.detect.export import MARKER, cached_export, entry_dir


@pytest.fixture(scope="module")
def frame(media) -> np.ndarray:
    with av.open(str(media("vtest.avi"))) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index == 40:
                return decoded.to_ndarray(format="bgr24")
    raise AssertionError("vtest.avi too short")


def _no_export(*args, **kwargs):
    raise AssertionError("exported again although the cache holds this model")


def test_auto_exports_to_openvino_once_and_reuses_the_cache(model_path, frame, monkeypatch) -> None:
    first = Detector(DetectorConfig(model=str(model_path)))  # exports unless this machine already did
    assert first.backend == "openvino"
    entry = entry_dir(model_path, "openvino", 640, half=False)
    assert cached_export(entry) is not None and (entry / MARKER).is_file()
    assert str(first.model.ckpt_path).startswith(str(entry))
    monkeypatch.setattr(export_module, "_export", _no_export)
    second = Detector(DetectorConfig(model=str(model_path)))
    assert second.backend == "openvino" and second.model.ckpt_path == first.model.ckpt_path
    found = second.detect(frame)
    assert len(found.xyxy) >= 3 and 0 in found.cls.tolist()  # the pedestrians of vtest.avi
    # ultralytics compiles for one frame at a time on all cores (what runtime.configure_threads relies on).
    compiled = second.model.predictor.model.backend.ov_compiled_model
    assert str(compiled.get_property("PERFORMANCE_HINT")) in ("LATENCY", "PerformanceMode.LATENCY")


def test_the_same_weights_under_another_name_share_the_cache_entry(model_path, tmp_path, monkeypatch) -> None:
    Detector(DetectorConfig(model=str(model_path)))  # cached (first test, or this machine before)
    renamed = tmp_path / "yolov8n.pt"
    shutil.copy2(model_path, renamed)
    monkeypatch.setattr(export_module, "_export", _no_export)
    assert Detector(DetectorConfig(model=str(renamed))).backend == "openvino"


def test_onnx_backend_and_a_corrupt_cache_entry_is_exported_again(model_path, frame, tmp_path, monkeypatch, caplog):
    real_cache = entry_dir(model_path, "onnx", 640, half=False)
    onnx = Detector(DetectorConfig(model=str(model_path), backend="onnx"))  # exports once per machine
    assert onnx.backend == "onnx" and str(onnx.model.ckpt_path).endswith(".onnx")
    assert len(onnx.detect(frame).xyxy) >= 3
    # A copy of that entry in a private cache, its model file cut short (a crash mid-write by another tool).
    monkeypatch.setenv("SMARTEYE_CACHE", str(tmp_path))
    private = entry_dir(model_path, "onnx", 640, half=False)
    shutil.copytree(real_cache, private)
    broken = cached_export(private)
    assert broken is not None
    broken.write_bytes(broken.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger="edge.detect"):
        repaired = Detector(DetectorConfig(model=str(model_path), backend="onnx"))
    assert any("unusable" in r.getMessage() and "exporting again" in r.getMessage() for r in caplog.records)
    assert any("exporting yolov8n.pt to ONNX (first run" in r.getMessage() for r in caplog.records)
    assert cached_export(private).stat().st_size > 1_000_000
    assert len(repaired.detect(frame).xyxy) >= 3


def test_an_incomplete_entry_without_its_marker_is_not_used(model_path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SMARTEYE_CACHE", str(tmp_path))
    entry = entry_dir(model_path, "openvino", 640, half=False)
    (entry / "yolov8n_openvino_model").mkdir(parents=True)  # an export interrupted before its rename
    assert cached_export(entry) is None


def test_an_exported_model_is_loaded_as_is(model_path, frame, monkeypatch) -> None:
    exported = Detector(DetectorConfig(model=str(model_path))).model.ckpt_path  # the cached OpenVINO folder
    monkeypatch.setattr(export_module, "_export", _no_export)
    direct = Detector(DetectorConfig(model=str(exported), backend="torch"))  # the file decides, not `backend`
    assert direct.backend == "openvino"
    assert len(direct.detect(frame).xyxy) >= 3


def test_torch_backend_runs_the_pt(model_path, monkeypatch) -> None:
    monkeypatch.setattr(export_module, "_export", _no_export)
    detector = Detector(DetectorConfig(model=str(model_path), backend="torch"))
    assert detector.backend == "torch" and str(detector.model.ckpt_path).endswith(".pt")


def test_unknown_backend_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="backend"):
        DetectorConfig(backend="cuda")
    with pytest.raises(ConfigError) as error:
        parse_config({"node": "n", "sources": [{"name": "a", "url": "x.mp4"}], "detector": {"backend": "tflite"}}, "t")
    assert "detector.backend" in str(error.value)


def test_auto_falls_back_to_onnx_then_torch_and_a_missing_runtime_is_named(monkeypatch) -> None:
    assert runtime.choose_backend("auto", "cpu") == "openvino"
    monkeypatch.setattr(runtime, "installed", lambda backend: backend != "openvino")
    assert runtime.choose_backend("auto", "cpu") == "onnx"
    monkeypatch.setattr(runtime, "installed", lambda backend: False)
    assert runtime.choose_backend("auto", "cpu") == "torch"
    with pytest.raises(runtime.RuntimeUnavailable, match=r"detector.backend: openvino needs .*openvino"):
        runtime.choose_backend("openvino", "cpu")


def test_missing_runtime_is_a_model_error(model_path, monkeypatch) -> None:
    monkeypatch.setattr(runtime, "installed", lambda backend: False)
    with pytest.raises(ModelError, match=r"detector\.backend: tensorrt needs"):
        Detector(DetectorConfig(model=str(model_path), backend="tensorrt"))


def test_ultralytics_never_pip_installs() -> None:
    """ultralytics internals (utils.AUTOINSTALL, checks.check_requirements): if they change, this fails."""
    import ultralytics.utils
    import ultralytics.utils.checks as checks

    runtime.disable_autoinstall()
    assert ultralytics.utils.AUTOINSTALL is False and checks.AUTOINSTALL is False
    assert checks.check_requirements("smarteye-no-such-package-xyz>=1") is False  # not found, not installed
