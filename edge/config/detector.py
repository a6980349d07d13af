"""Configuration of the object detector (any model format ultralytics loads)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smarteye.strict import StrictModel


class SlicingConfig(StrictModel):
    """Tiles of a large frame, each run at the model's own scale, merged back into one set of boxes.

    A 4K nadir frame shrunk to 640 px leaves a car 4 px wide; a tile keeps it at full resolution. The cost
    grows with the tile count, so `max_tiles_per_frame` bounds it: the grid is visited in turn across
    frames and each tile's latest boxes stand in until it is run again.
    """

    tile: int = Field(
        640,
        ge=64,
        le=4096,
        multiple_of=32,
        title="Tile size",
        description="Side of a square tile in pixels of the frame, and the model's input size for each tile.",
    )
    tile_m: float | None = Field(
        None,
        gt=0,
        title="Tile size on the ground",
        description="Side of a tile in metres on the ground, for a geolocated stream: the tile in pixels follows "
        "the ground sample distance at the frame centre (from the previous frame's pose or the calibration), so "
        "an object keeps its size at the model's input whatever the altitude; each tile is resized to `tile`. "
        "`tile` pixels are used until a pose is known, and on streams without `geo`.",
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


class DetectorConfig(StrictModel):
    """Which YOLO model runs, on what, with which thresholds."""

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
    backend: Literal["auto", "torch", "openvino", "onnx", "tensorrt"] = Field(
        "auto",
        title="Runtime",
        description="What runs a .pt model. auto: on a CUDA device TensorRT (torch on CUDA when tensorrt is not "
        "installed); on a CPU, OpenVINO (ONNX Runtime when openvino is not installed), about 2.8x faster than "
        "PyTorch: the .pt is exported once and cached (SMARTEYE_CACHE/exports, keyed by the file's SHA-256, "
        "imgsz and half). torch runs the .pt as is; openvino, onnx, tensorrt export to that runtime. A model "
        "already exported (.onnx, *_openvino_model directory, .engine) is loaded as is whatever this says.",
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
