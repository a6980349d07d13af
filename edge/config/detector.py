"""Configuration of the object detector (any model format ultralytics loads)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DetectorConfig(BaseModel):
    """Which YOLO model runs, on what, with which thresholds."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "yolov8n.pt",
        title="Model",
        description="A .pt, .onnx, OpenVINO directory or other ultralytics format; a bare name is looked up "
        "in models/, then $SMARTEYE_ASSETS/models, then downloaded by ultralytics (internet).",
    )
    imgsz: int = Field(640, ge=32, le=4096, multiple_of=32, title="Input size", description="Inference size (px).")
    conf: float = Field(0.25, gt=0, lt=1, title="Confidence", description="Minimum detection score.")
    iou: float = Field(0.7, gt=0, lt=1, title="NMS IoU", description="IoU threshold of non-maximum suppression.")
    classes: list[str] | None = Field(
        None,
        title="Classes",
        description="Only these class names (e.g. [person, car]); None keeps every class the model knows.",
    )
    device: str = Field(
        "cpu", title="Device", description="cpu, cuda, cuda:0, mps… passed to ultralytics (GPU paths stay optional)."
    )
    half: bool = Field(False, title="FP16", description="Half precision (GPU only).")
