"""Several frames inferred at once on one OpenVINO model: the only module that reaches into ultralytics' OpenVINO
backend (its private `ov_compiled_model`), pinned by tests/edge/detect/test_openvino_requests.py.

ultralytics compiles an OpenVINO model with PERFORMANCE_HINT=LATENCY: one inference at a time spread over every
core. Each inference's parallel sections then wait for their slowest thread, so a core taken for a moment by
decoding, encoding or tracking stalls the whole inference, and the cores idle while Python pre- and
post-processes. Compiled with THROUGHPUT instead, the CPU plugin runs independent streams (one per core here),
and with one infer request in flight per stream a frame's inference overlaps the next one's pre/post-processing
and a stolen core slows only one stream. ultralytics runs one request synchronously per predictor (it dropped
AsyncInferQueue, ultralytics#25923), so each detection worker gets its own predictor (a YOLO object loaded from
the same export) whose backend calls its own infer request of the one THROUGHPUT-compiled model: plain
synchronous `infer` calls from several threads, no callbacks. Pre- and post-processing stay ultralytics' own.

At most MAX_STREAMS streams (frames in flight): two already overlap one frame's inference with the other's pre-
and post-processing, and each stream still gets half the cores, so a frame's own latency at most about doubles
(THROUGHPUT's default, one stream per core, would make it single-threaded on a many-core box).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("edge.detect")

HINT = "THROUGHPUT"
MAX_STREAMS = 2


class _Request:
    """Stands in for the backend's compiled model: each call runs on this replica's own infer request."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def __call__(self, inputs: Any) -> Any:
        return self.request.infer(inputs)  # an OVDict, as the compiled model's own call returns

    def input(self, *args: Any) -> Any:
        return self.compiled.input(*args)


def _backend(model: Any) -> Any | None:
    """ultralytics' OpenVINO backend behind a YOLO object whose predictor is set up, or None."""
    predictor = getattr(model, "predictor", None)
    backend = getattr(getattr(predictor, "model", None), "backend", None)
    return backend if hasattr(backend, "ov_compiled_model") else None


def _xml(path: str) -> Path:
    model = Path(path)
    return model if model.suffix == ".xml" else next(model.glob("*.xml"))


def compile_for_throughput(model: Any) -> Any | None:
    """The model's export compiled with the THROUGHPUT hint on the CPU, or None when that does not apply: a single
    core, not an OpenVINO model, a device other than the CPU, a dynamic input (sliced detection's tiles), an
    internal that moved."""
    streams = min(MAX_STREAMS, os.cpu_count() or 1)
    backend = _backend(model)
    if backend is None or streams < 2:
        return None
    current = backend.ov_compiled_model
    if list(current.get_property("EXECUTION_DEVICES")) != ["CPU"] or current.input().get_partial_shape().is_dynamic:
        return None
    import openvino as ov

    settings = {"PERFORMANCE_HINT": HINT, "NUM_STREAMS": streams}
    return ov.Core().compile_model(str(_xml(str(model.ckpt_path))), "CPU", settings)


def optimal_requests(compiled: Any) -> int:
    """How many requests keep every stream of the compiled model busy (the plugin's own figure)."""
    return int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))


def bind(model: Any, compiled: Any) -> bool:
    """Make `model`'s predictor infer on its own request of `compiled`; False if ultralytics' internals moved.
    Called before each use: ultralytics makes a new predictor when a setup argument changes."""
    backend = _backend(model)
    if backend is None:
        return False
    current = backend.ov_compiled_model
    if not (isinstance(current, _Request) and current.compiled is compiled):
        backend.ov_compiled_model = _Request(compiled)
    return True


def replicas(model: Any, predict_args: dict[str, Any], count: int) -> list[Any]:
    """`count` YOLO objects on `model`'s export, each with its predictor set up (one blank prediction) for
    `predict_args`; the caller binds them to the THROUGHPUT model."""
    from ultralytics import YOLO

    size = int(predict_args.get("imgsz") or 640)
    blank = np.zeros((size, size, 3), np.uint8)
    made = []
    for _ in range(count):
        replica = YOLO(str(model.ckpt_path), task=model.task)
        replica.predict(blank, **predict_args)
        made.append(replica)
    return made
