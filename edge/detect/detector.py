"""Detection stage: any model format ultralytics loads (.pt, ONNX, OpenVINO, TensorRT…)."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.assets import AssetMissing, find_asset, obtain_asset, searched_places
from edge.assets_catalog import catalog_entry
from edge.config.detector import DetectorConfig
from edge.detect import openvino_requests
from edge.detect.runtime import ExportError, LoadedModel, RuntimeUnavailable, load_model, runs_on
from edge.detect.sliced import Slicer

if TYPE_CHECKING:
    from edge.frame import Frame

log = logging.getLogger("edge.detect")


class ModelError(Exception):
    """The model cannot be found, loaded or run; the message says which and why."""


@dataclass(slots=True)
class Detections:
    """Boxes of one frame as NumPy arrays; `boxes` is the ultralytics Boxes object the tracker reads."""

    xyxy: np.ndarray  # (N, 4) pixels; for oriented boxes their axis-aligned hull
    conf: np.ndarray  # (N,)
    cls: np.ndarray  # (N,)
    boxes: Any
    xywhr: np.ndarray | None = None  # (N, 5) centre, size, rotation (rad) when the model gives oriented boxes
    tiles: int = 0  # tiles run for this frame when sliced (0: whole frame only)


def resolve_model_path(name: str) -> str:
    """A local path for the model: found, or (a public model with a pinned source) fetched into the cache and
    checked on first use; else the bare name, for ultralytics to download."""
    found = find_asset(name, "models")
    if found is not None:
        return str(found)
    path = Path(name)
    if path.is_absolute() or len(path.parts) > 1:
        raise ModelError(f"model file not found: {name}")
    if catalog_entry(name) is not None:
        try:
            return str(obtain_asset(name, "models"))
        except AssetMissing as error:
            raise ModelError(f"model {name!r}: {error}") from None
    return name


class ModelSlots:
    """The YOLO objects one loaded runtime's predictions run on, one per prediction that may run at once, checked out
    per call: ultralytics' predictor keeps per-call state, so two threads never share one. Shared by every Detector
    around the same loaded model (`slots_of`). Holds the loaded model alone until `parallelize`."""

    def __init__(self, model: Any) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._free.put(model)
        self.count = 1
        self.compiled: Any = None  # the THROUGHPUT-compiled OpenVINO model the replicas infer on
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        model = self._free.get()  # waits while every one is predicting
        try:
            if self.compiled is not None:
                openvino_requests.bind(model, self.compiled)
            yield model
        finally:
            self._free.put(model)

    def replace(self, models: list[Any], compiled: Any) -> None:
        """Run on `models` (all idle, bound to `compiled`) from now on; the loaded model stays for direct calls."""
        self._free.get()  # the loaded model, idle: nothing predicts yet when the node parallelizes
        for model in models:
            self._free.put(model)
        self.count, self.compiled = len(models), compiled


_slots: weakref.WeakKeyDictionary[Any, ModelSlots] = weakref.WeakKeyDictionary()
_slots_lock = threading.Lock()


def slots_of(model: Any) -> ModelSlots:
    """The slots of a loaded model, the same for every Detector sharing it (edge/detect/pool.py)."""
    with _slots_lock:
        found = _slots.get(model)
        if found is None:
            found = _slots[model] = ModelSlots(model)
        return found


class Detector:
    """A loaded YOLO model with the configured thresholds and class filter; one serves every stream.

    `predict` may be called from several threads (the node's detection workers): each call runs on a free slot of
    the loaded runtime (ModelSlots), and waits for one when all are busy."""

    name = "inference"

    def __init__(self, config: DetectorConfig, model: Any | None = None) -> None:
        """`model`: an already loaded model with the same runtime settings, shared with another stream's
        detector that differs only in thresholds or classes (edge/detect/pool.py); None loads one."""
        self.config = config
        path = resolve_model_path(config.model)
        try:
            # The task (detect, or obb for oriented boxes) comes from the model file itself; the runtime from
            # detector.backend (a .pt exported once to OpenVINO by default on a CPU: edge/detect/runtime.py).
            loaded = load_model(config, path) if model is None else LoadedModel(model, runs_on(model), path)
        except FileNotFoundError:
            raise ModelError(
                f"model {config.model!r} not found (looked in {searched_places('models')}) and could not be downloaded"
            ) from None
        except RuntimeUnavailable as error:
            raise ModelError(str(error)) from None
        except ExportError as error:
            raise ModelError(f"cannot load model {config.model!r} ({path}): {error}") from None
        except Exception as error:
            raise ModelError(f"cannot load model {config.model!r} ({path}): {error}") from None
        self.model = loaded.model
        self.backend = loaded.backend  # torch, openvino, onnx or tensorrt: what actually runs
        self.warm = False  # set by the first detection: warm_up() is then a no-op
        self.model_name = Path(config.model).name
        self.oriented = self.model.task == "obb"
        if self.model.task not in ("detect", "obb"):
            raise ModelError(f"model {config.model!r} is a {self.model.task!r} model; detect or obb expected")
        self.slicer = Slicer(self, config.slicing) if config.slicing is not None else None
        self.names: dict[int, str] = dict(self.model.names)
        self.class_ids: list[int] | None = None
        if config.classes is not None:
            by_name = {v: k for k, v in self.names.items()}
            unknown = [c for c in config.classes if c not in by_name]
            if unknown:
                raise ModelError(
                    f"detector.classes: {', '.join(map(repr, unknown))} not among the classes of "
                    f"{self.model_name} (e.g. {', '.join(list(by_name)[:8])}…)"
                )
            self.class_ids = [by_name[c] for c in config.classes]
        self.predict_args: dict[str, Any] = {
            "imgsz": config.imgsz,
            "conf": config.conf,
            "iou": config.iou,
            "classes": self.class_ids,
            "device": config.device,
            "verbose": False,
        }
        if config.half:
            self.predict_args["quantize"] = "fp16"
        self.slots = slots_of(self.model)

    def parallelize(self) -> int:
        """Let this runtime infer several frames at once when it gains from it, and say how many (1: one at a time).

        OpenVINO on the CPU: the export compiled for throughput with one infer request per stream of the plugin
        (edge/detect/openvino_requests.py), each on its own predictor. Other runtimes, sliced detection (dynamic
        tile shapes) and a plugin that offers a single stream keep the one loaded model. `model` (the loaded
        model) is left as ultralytics compiled it, for direct calls."""
        slots = self.slots
        with slots.lock:
            if slots.count > 1 or self.backend != "openvino" or self.slicer is not None:
                return slots.count
            compiled = openvino_requests.compile_for_throughput(self.model)
            count = openvino_requests.optimal_requests(compiled) if compiled is not None else 1
            if count < 2:
                return 1
            replicas = openvino_requests.replicas(self.model, self.predict_args, count)
            if not all(openvino_requests.bind(replica, compiled) for replica in replicas):
                log.warning("detector: ultralytics' OpenVINO backend changed; inferring one frame at a time")
                return 1
            slots.replace(replicas, compiled)
            log.info("detector: %s infers %d frames at once (OpenVINO %s)", self.model_name, count,
                     openvino_requests.HINT)  # fmt: skip
            return count

    def warm_up(self, width: int = 640, height: int = 480, rounds: int = 2) -> None:
        """Run on a blank frame of the stream's size so the first real frames are not slowed by lazy set-up
        (the runtime compiling for this input shape, allocators, ultralytics' predictor)."""
        if self.warm:
            return
        blank = np.zeros((height, width, 3), dtype=np.uint8)
        for _ in range(rounds):
            self.detect(blank)

    def predict(self, images: np.ndarray | list[np.ndarray], **overrides: Any) -> list[Any]:
        """ultralytics Results, one per image (a list runs as one batch)."""
        try:
            with self.slots.use() as model:
                return model.predict(images, **{**self.predict_args, **overrides})
        except Exception as error:
            raise ModelError(f"inference with {self.model_name} failed: {error}") from error

    def detect(self, image: np.ndarray) -> Detections:
        result = self.predict(image)[0]
        self.warm = True
        return self.detections(result.obb if self.oriented else result.boxes)

    def detections(self, boxes: Any) -> Detections:
        """Detections from an ultralytics Boxes or OBB object."""
        boxes = boxes.cpu().numpy()
        xywhr = boxes.xywhr if self.oriented else None
        return Detections(boxes.xyxy, boxes.conf, boxes.cls.astype(np.int64), boxes, xywhr)

    def process(self, frame: Frame) -> Frame:
        """Stage: the frame's detections (on tiles when slicing is configured)."""
        if self.slicer is not None:
            frame.detections = self.slicer.detect(frame.stream, frame.bgr(), frame.timings)
        else:
            frame.detections = self.detect(frame.bgr())
        return frame
