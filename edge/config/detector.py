"""Configuration of the object detector (any model format ultralytics loads)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SlicingConfig(BaseModel):
    """Tiles of a large frame, each run at the model's own scale, merged back into one set of boxes.

    A 4K nadir frame shrunk to 640 px leaves a car 4 px wide; a tile keeps it at full resolution. The cost
    grows with the tile count, so `max_tiles_per_frame` bounds it: the grid is visited in turn across
    frames and each tile's latest boxes stand in until it is run again.
    """

    model_config = ConfigDict(extra="forbid")

    tile: int = Field(
        640, ge=64, le=4096, multiple_of=32, title="Tile size", description="Side of a square tile (px of the frame)."
    )
    overlap: float = Field(
        0.2,
        ge=0,
        lt=0.9,
        title="Overlap",
        description="Fraction of a tile shared with its neighbour, so an object "
        "cut by one tile's border is whole in the next.",
    )
    max_tiles_per_frame: int | None = Field(
        None,
        ge=1,
        title="Tiles per frame",
        description="At most this many tiles run per frame, rotating through the grid; None runs them all.",
    )
    full_frame: bool = Field(
        True,
        title="Whole-frame pass",
        description="Also run the whole frame at `imgsz`, for objects larger than a tile.",
    )
    merge_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        title="Merge threshold",
        description="Boxes of one class from different tiles whose intersection covers this fraction of the "
        "smaller box are one object (a box cut by a tile border is contained in the whole one).",
    )


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
    slicing: SlicingConfig | None = Field(
        None,
        title="Sliced inference",
        description="Detect on overlapping tiles of large frames (4K, high altitude), where objects are a few "
        "pixels at the model's input size; None runs the whole frame at `imgsz`.",
    )
