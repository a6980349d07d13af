"""Detection stage: any model format ultralytics loads (.pt, ONNX, OpenVINO, TensorRT…)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.assets import find_asset, searched_places
from edge.config.detector import DetectorConfig

if TYPE_CHECKING:
    from edge.frame import Frame

log = logging.getLogger("edge.detect")


class ModelError(Exception):
    """The model cannot be found, loaded or run; the message says which and why."""


@dataclass(slots=True)
class Detections:
    """Boxes of one frame as NumPy arrays; `boxes` is the ultralytics Boxes object the tracker reads."""

    xyxy: np.ndarray  # (N, 4) pixels
    conf: np.ndarray  # (N,)
    cls: np.ndarray  # (N,)
    boxes: Any


def resolve_model_path(name: str) -> str:
    """A local path for the model, or the bare name when only an ultralytics download can supply it."""
    found = find_asset(name, "models")
    if found is not None:
        return str(found)
    path = Path(name)
    if path.is_absolute() or len(path.parts) > 1:
        raise ModelError(f"model file not found: {name}")
    return name


class Detector:
    """A loaded YOLO model with the configured thresholds and class filter; one serves every stream."""

    name = "inference"

    def __init__(self, config: DetectorConfig) -> None:
        from ultralytics import YOLO

        self.config = config
        path = resolve_model_path(config.model)
        try:
            self.model = YOLO(path, task="detect")
        except FileNotFoundError:
            raise ModelError(
                f"model {config.model!r} not found (looked in {searched_places('models')}) and could not be downloaded"
            ) from None
        except Exception as error:
            raise ModelError(f"cannot load model {config.model!r} ({path}): {error}") from None
        self.model_name = Path(config.model).name
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

    def warm_up(self, width: int = 640, height: int = 480) -> None:
        """Run once on a blank frame so the first real frame is not slowed by lazy set-up."""
        self.detect(np.zeros((height, width, 3), dtype=np.uint8))

    def detect(self, image: np.ndarray) -> Detections:
        try:
            result = self.model.predict(image, **self.predict_args)[0]
        except Exception as error:
            raise ModelError(f"inference with {self.model_name} failed: {error}") from error
        boxes = result.boxes.cpu().numpy()
        return Detections(boxes.xyxy, boxes.conf, boxes.cls.astype(np.int64), boxes)

    def process(self, frame: Frame) -> Frame:
        """Stage: the frame's detections."""
        frame.detections = self.detect(frame.bgr())
        return frame
