#!/usr/bin/env python3
"""Vehicle recall and precision on the labelled 4K nadir frames of $SMARTEYE_ASSETS/aerial, per detection mode.

Each mode runs the edge's own Detector (edge/detect) on A_frame_*.jpg: the whole frame at 640, the whole
frame at a larger input size, sliced (tiles at full resolution, merged, with and without the whole-frame
pass), the same for other detect models (`--also`, default yolo11n.pt), and an oriented-box (OBB) aerial
model when one can be loaded (`yolov8n-obb.pt`: found in models/ or $SMARTEYE_ASSETS/models, or downloaded by
ultralytics on a machine with internet).

Labels are `class x1 y1 … x4 y4` (oriented box corners as fractions; 0 bus, 1 car, 2 truck). Only vehicles
count: COCO car/bus/truck, VisDrone car/van/truck/bus, DOTA small/large vehicle. A prediction matches a
label at IoU ≥ 0.5 between axis-aligned boxes (the label's hull); for OBB models also between the rotated
polygons (shapely). Matching is one-to-one, best score first, class-agnostic among vehicles (a DOTA model
has no car/truck split; the class-aware count for COCO models is printed too). With a tile budget
(`tiled_budget`), each still frame is fed until the grid has been visited once, and ms/frame is per fed frame:
the bounded cost a stream pays, with boxes at most one turn old.

Usage: python scripts/aerial_accuracy.py [--conf 0.25] [--json out.json] [--modes full640,tiled,…]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from shapely.geometry import Polygon

from edge.assets import assets_root
from edge.config.detector import DetectorConfig, SlicingConfig
from edge.detect.detector import Detector, ModelError

LABEL_NAMES = {0: "bus", 1: "car", 2: "truck"}
VEHICLES = {"car", "van", "bus", "truck", "small vehicle", "large vehicle"}  # COCO, VisDrone, DOTA
IOU = 0.5


@dataclass(slots=True)
class Mode:
    name: str
    config: DetectorConfig
    note: str


@dataclass(slots=True)
class Score:
    mode: str
    model: str
    backend: str
    labels: int
    predictions: int
    matched: int
    matched_same_class: int | None
    matched_rotated: int | None
    recall: float
    precision: float
    ms_per_frame: float
    note: str


def load_labels(path: Path, width: int, height: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(classes, corner polygons in pixels) of one label file."""
    classes, polygons = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 9:
            continue
        classes.append(int(parts[0]))
        polygons.append(np.array(parts[1:], dtype=float).reshape(4, 2) * (width, height))
    return np.array(classes), polygons


def hull(polygon: np.ndarray) -> np.ndarray:
    return np.concatenate([polygon.min(axis=0), polygon.max(axis=0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of axis-aligned boxes (N, 4) × (M, 4)."""
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def polygon_iou(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    shapes_a, shapes_b = [Polygon(p).buffer(0) for p in a], [Polygon(p).buffer(0) for p in b]
    out = np.zeros((len(a), len(b)))
    for i, pa in enumerate(shapes_a):
        for j, pb in enumerate(shapes_b):
            if pa.intersects(pb):
                union = pa.union(pb).area
                out[i, j] = pa.intersection(pb).area / union if union else 0.0
    return out


def match(iou: np.ndarray, order: np.ndarray) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, predictions by descending score, each to its best free label ≥ IOU."""
    free = np.ones(iou.shape[1], dtype=bool)
    pairs = []
    for i in order:
        candidates = np.where(free & (iou[i] >= IOU))[0]
        if len(candidates):
            j = candidates[np.argmax(iou[i, candidates])]
            free[j] = False
            pairs.append((int(i), int(j)))
    return pairs


def modes(model: str, obb_model: str, conf: float, others: list[str] = ()) -> list[Mode]:
    base: dict = {"model": model, "conf": conf, "classes": ["car", "bus", "truck"]}
    tiles = SlicingConfig(tile=640, overlap=0.2, full_frame=True)
    # Other detect models the user has (e.g. yolo11n.pt, or a VisDrone-trained one): whole frame and tiled.
    extra = [
        Mode(f"{Path(other).stem}_{name}", DetectorConfig(**{**base, "model": other}, imgsz=640, slicing=slicing),
             f"{other}, {note}")
        for other in others
        for name, slicing, note in (("full640", None, "whole frame at 640"),
                                    ("tiled", tiles, "640 px tiles, 20 % overlap + whole frame"))
    ]  # fmt: skip
    return [
        Mode("full640", DetectorConfig(**base, imgsz=640), "whole frame at 640"),
        Mode("full1920", DetectorConfig(**base, imgsz=1920), "whole frame at 1920"),
        Mode("tiled", DetectorConfig(**base, imgsz=640, slicing=tiles), "640 px tiles, 20 % overlap + whole frame"),
        Mode(
            "tiled_budget",
            DetectorConfig(**base, imgsz=640, slicing=tiles.model_copy(update={"max_tiles_per_frame": 4})),
            "640 px tiles, at most 4 per frame in turn + whole frame",
        ),
        Mode(
            "tiled_only",
            DetectorConfig(**base, imgsz=640, slicing=tiles.model_copy(update={"full_frame": False})),
            "640 px tiles, 20 % overlap",
        ),
        *extra,
        Mode("obb", DetectorConfig(model=obb_model, conf=conf, imgsz=1024), "DOTA OBB model, whole frame at 1024"),
        Mode(
            "obb_tiled",
            DetectorConfig(model=obb_model, conf=conf, imgsz=1024, slicing=SlicingConfig(tile=1024, overlap=0.2)),
            "DOTA OBB model, 1024 px tiles + whole frame",
        ),
    ]


def evaluate(mode: Mode, frames: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]) -> Score:
    detector = Detector(mode.config)
    vehicle_ids = {cid for cid, name in detector.names.items() if name in VEHICLES}
    detector.warm_up(640, 640)
    labels = predictions = matched = same = rotated = calls = 0
    elapsed = 0.0
    for index, (image, classes, polygons) in enumerate(frames):
        slicer = detector.slicer
        turn = 1
        if slicer is not None:
            plan = slicer.plan(f"frame{index}", image.shape[1], image.shape[0])
            turn = math.ceil(len(plan.tiles) / plan.per_frame)
        for _ in range(turn):
            started = time.perf_counter()
            found = slicer.detect(f"frame{index}", image) if slicer is not None else detector.detect(image)
            elapsed += time.perf_counter() - started
            calls += 1
        keep = np.isin(found.cls, list(vehicle_ids))
        xyxy, conf, cls = found.xyxy[keep], found.conf[keep], found.cls[keep]
        order = np.argsort(-conf)
        truth = np.array([hull(p) for p in polygons]).reshape(-1, 4)
        pairs = match(box_iou(xyxy, truth), order)
        labels += len(truth)
        predictions += len(xyxy)
        matched += len(pairs)
        same += sum(detector.names[int(cls[i])] == LABEL_NAMES.get(int(classes[j])) for i, j in pairs)
        if detector.oriented and found.xywhr is not None:
            from ultralytics.utils.ops import xywhr2xyxyxyxy

            corners = list(xywhr2xyxyxyxy(found.xywhr[keep].astype(np.float32)))
            rotated += len(match(polygon_iou(corners, polygons), order))
    return Score(
        mode=mode.name,
        model=detector.model_name,
        backend=getattr(detector, "backend", "torch"),
        labels=labels,
        predictions=predictions,
        matched=matched,
        matched_same_class=None if detector.oriented else same,
        matched_rotated=rotated if detector.oriented else None,
        recall=round(matched / labels, 3) if labels else 0.0,
        precision=round(matched / predictions, 3) if predictions else 0.0,
        ms_per_frame=round(1000 * elapsed / calls, 1),
        note=mode.note,
    )


def table(scores: list[Score]) -> str:
    lines = [
        "| mode | model (runtime) | labelled | predicted | matched (IoU ≥ 0.5) | recall | precision | ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        extra = f", same class {s.matched_same_class}" if s.matched_same_class is not None else ""
        extra += f", rotated IoU {s.matched_rotated}" if s.matched_rotated is not None else ""
        lines.append(
            f"| {s.mode} ({s.note}) | {s.model} ({s.backend}) | {s.labels} | {s.predictions} | {s.matched}{extra} | "
            f"{s.recall:.3f} | {s.precision:.3f} | {s.ms_per_frame:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov8n.pt", help="COCO model for the full-frame and tiled modes")
    parser.add_argument("--obb-model", default="yolov8n-obb.pt", help="aerial OBB model (DOTA)")
    parser.add_argument("--also", default="yolo11n.pt", help="other detect models (comma-separated), whole and tiled")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--modes", default="", help="comma-separated subset of the modes (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    root = assets_root()
    folder = root / "aerial" if root else None
    if folder is None or not folder.is_dir():
        print("no aerial/ folder under $SMARTEYE_ASSETS (default ../shared)", file=sys.stderr)
        return 2
    frames = []
    for image_path in sorted(folder.glob("*.jpg")):
        label_path = image_path.with_suffix(".txt")
        if not label_path.exists():
            continue
        image = cv2.imread(str(image_path))
        classes, polygons = load_labels(label_path, image.shape[1], image.shape[0])
        frames.append((image, classes, polygons))
    print(f"{len(frames)} labelled frames, {sum(len(p) for _, _, p in frames)} vehicles, conf {args.conf}")

    wanted = set(filter(None, args.modes.split(",")))
    scores, skipped = [], {}
    for mode in modes(args.model, args.obb_model, args.conf, list(filter(None, args.also.split(",")))):
        if wanted and mode.name not in wanted:
            continue
        try:
            score = evaluate(mode, frames)
        except ModelError as error:
            skipped[mode.name] = str(error)
            print(f"{mode.name}: not run: {error}", file=sys.stderr)
            continue
        scores.append(score)
        print(f"{mode.name}: recall {score.recall:.3f} precision {score.precision:.3f}", file=sys.stderr)
    print(table(scores))
    for name, why in skipped.items():
        print(f"- {name}: not run ({why})")
    if args.json:
        args.json.write_text(json.dumps({"scores": [asdict(s) for s in scores], "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
