"""Which runtime runs the model on this host, and the thread pools around it.

On a CPU the same yolov8n weights take ~84 ms a frame through PyTorch, ~56 ms through ONNX Runtime and ~30 ms
through OpenVINO (2-core host), so `detector.backend: auto` exports a `.pt` once to OpenVINO (ONNX Runtime when
openvino is not installed) and loads that; on a CUDA device it picks TensorRT (torch on CUDA without tensorrt).
A model file that is already an export is loaded as it is.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.config.detector import DetectorConfig
from edge.detect.export import ExportError, discard, export_model

# ultralytics pip-installs a missing requirement (onnx, openvino…) the moment an export or a load asks for it:
# on an edge node that means an unannounced download into the running environment, or a long hang offline.
# Every runtime SmartEye uses is a declared dependency, so a missing one is an error, never an install. The
# variable is read once when ultralytics is imported, hence here, before any import of it; a user who sets
# YOLO_AUTOINSTALL explicitly keeps their choice.
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

log = logging.getLogger("edge.detect")

BACKENDS = ("torch", "openvino", "onnx", "tensorrt")
PACKAGES = {"openvino": ("openvino",), "onnx": ("onnxruntime", "onnx"), "tensorrt": ("tensorrt",)}


class RuntimeUnavailable(Exception):
    """The configured backend's package is not installed; the message names the field and the package."""


@dataclass(slots=True)
class LoadedModel:
    """An ultralytics model ready to predict, what runs it, and the file it was loaded from."""

    model: Any
    backend: str
    path: str


def disable_autoinstall() -> None:
    """Make sure ultralytics never pip-installs at run time, even when it was imported before this module
    (it copies YOLO_AUTOINSTALL into module constants at import). Leaves an explicit YOLO_AUTOINSTALL=True alone."""
    if os.environ.get("YOLO_AUTOINSTALL", "").lower() not in ("false", "0", "no"):
        return
    for name in ("ultralytics.utils", "ultralytics.utils.checks"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "AUTOINSTALL"):
            module.AUTOINSTALL = False


def installed(backend: str) -> bool:
    return all(importlib.util.find_spec(package) is not None for package in PACKAGES.get(backend, ()))


def cuda_device(device: str) -> bool:
    """Whether `device` names a CUDA GPU that this host has."""
    if not (device.startswith("cuda") or device.replace(",", "").isdigit()):
        return False
    import torch

    return torch.cuda.is_available()


def choose_backend(requested: str, device: str) -> str:
    """The runtime for a `.pt` model: `requested`, or for `auto` the fastest one installed for `device`."""
    if requested != "auto":
        if requested != "torch" and not installed(requested):
            raise RuntimeUnavailable(
                f"detector.backend: {requested} needs the Python package(s) {', '.join(PACKAGES[requested])}, "
                "which are not installed (or use backend: auto)"
            )
        return requested
    if cuda_device(device):
        return "tensorrt" if installed("tensorrt") else "torch"
    for backend in ("openvino", "onnx"):
        if installed(backend):
            return backend
    return "torch"


def exported_backend(path: str) -> str | None:
    """The runtime a model file was exported for, or None for a `.pt` (or a format SmartEye does not export)."""
    model = Path(path)
    if model.suffix == ".onnx":
        return "onnx"
    if model.suffix == ".engine":
        return "tensorrt"
    if model.name.endswith("_openvino_model") or model.suffix == ".xml":
        return "openvino"
    return None


def runs_on(model: Any) -> str:
    """The runtime of an already loaded ultralytics model (one shared between streams' detectors)."""
    return exported_backend(str(getattr(model, "ckpt_path", None) or "")) or "torch"


_threads_set_for: str | None = None


def configure_threads(backend: str, *, force: bool = False) -> None:
    """Size the thread pools for the runtime doing the inference, once per process.

    - torch: with PyTorch inferring, its intra-op pool should use every core (its default). With OpenVINO or ONNX
      Runtime inferring, torch only does pre/post-processing on small tensors (NMS over ~8400 candidates); its
      OpenMP workers spin-waiting after each op steal cycles from the runtime's own pool, so one thread.
    - OpenCV: the frame path calls it from several threads at once (readers converting, the detector
      letterboxing, one annotator per stream drawing); its per-call parallel_for on 640 px frames costs more in
      hand-offs than it saves and oversubscribes the cores, so one thread each: parallelism comes from the stages.
    - OpenVINO: ultralytics compiles with PERFORMANCE_HINT=LATENCY (one stream over all cores, one synchronous
      request), which suits a caller serving frames one at a time (test_runtime checks that hint). The node infers
      on a THROUGHPUT-compiled copy instead, with one request in flight per stream of the plugin
      (edge/detect/openvino_requests.py, Detector.parallelize).
    - ONNX Runtime: ultralytics leaves intra_op_num_threads at its default, the physical cores.

    Once a PyTorch model is loaded it keeps its cores; `force` sets the pools for `backend` regardless (benchmarks
    timing several runtimes in one process, each as it would run alone).
    """
    global _threads_set_for
    if not force and (_threads_set_for == backend or _threads_set_for == "torch"):
        return
    import cv2
    import torch

    cv2.setNumThreads(1)
    if backend == "torch":
        torch.set_num_threads(os.cpu_count() or 1)
    else:
        torch.set_num_threads(1)
    _threads_set_for = backend


def load_model(config: DetectorConfig, path: str) -> LoadedModel:
    """The model at `path` on the configured runtime, exported first (once, cached) when that is not PyTorch.

    Raises RuntimeUnavailable (backend not installed) or ExportError; any other exception is a load failure."""
    from ultralytics import YOLO

    disable_autoinstall()
    already = exported_backend(path)
    if already is not None:
        configure_threads(already)
        return LoadedModel(YOLO(path), already, path)
    weights = Path(path)
    backend = choose_backend(config.backend, config.device)
    if weights.suffix != ".pt" or backend == "torch":
        configure_threads("torch")
        return LoadedModel(YOLO(path), "torch", path)
    if not weights.exists():  # a bare name ultralytics downloads (on a machine with internet)
        weights = Path(YOLO(path).ckpt_path or path)
    configure_threads(backend)
    # Tiles of another size than imgsz need an export that takes any input size.
    dynamic = config.slicing is not None and config.slicing.tile != config.imgsz
    exported = export_model(weights, backend, config.imgsz, config.half, config.device, dynamic)
    try:
        return LoadedModel(_checked(YOLO(str(exported)), config), backend, str(exported))
    except Exception as error:  # a cache entry that is truncated, from another version, or otherwise broken
        discard(exported.parent, str(error).splitlines()[0] if str(error) else type(error).__name__)
        exported = export_model(weights, backend, config.imgsz, config.half, config.device, dynamic)
        return LoadedModel(_checked(YOLO(str(exported)), config), backend, str(exported))


def _checked(model: Any, config: DetectorConfig) -> Any:
    """The model after one prediction on a blank frame: an exported model is only read and compiled on its first
    prediction, so a broken file shows here rather than on the first camera frame."""
    blank = np.zeros((config.imgsz, config.imgsz, 3), np.uint8)
    model.predict(blank, imgsz=config.imgsz, device=config.device, verbose=False)
    return model


__all__ = ["BACKENDS", "ExportError", "LoadedModel", "RuntimeUnavailable", "choose_backend", "load_model"]
