#!/usr/bin/env python3
"""Is one batched inference of several streams' frames faster than one inference per frame, on this host?

Issue 11 asks to batch streams into one inference only where measurement shows it is faster. Frames of four
sample videos (one per stream) are run (a) one `predict` call per frame and (b) one `predict` call with the list
of all of them (ultralytics runs a list as one batch), alternating a and b each round so the machine's drift
hits both alike. Prints ms per frame for each and their ratio per round and as a median.

    python scripts/benchmark_batch.py [--streams 4] [--rounds 5] [--repeats 5] [--imgsz 640] [--model yolov8n.pt]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import av
import numpy as np

from edge.assets import sample_media
from edge.config import DetectorConfig
from edge.detect.detector import Detector, resolve_model_path

VIDEOS = ["gopro_karma.mp4", "intel_car-detection.mp4", "intel_one-by-one-person-detection.mp4", "vtest.avi"]


def first_frame(name: str, index: int = 30) -> np.ndarray:
    with av.open(str(sample_media(name))) as container:
        for position, decoded in enumerate(container.decode(video=0)):
            if position == index:
                return decoded.to_ndarray(format="bgr24")
    raise SystemExit(f"{name} has fewer than {index + 1} frames")


def one_by_one(detector: Detector, frames: list[np.ndarray], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        for image in frames:
            detector.predict(image)
    return (time.perf_counter() - started) / (repeats * len(frames))


def batched(detector: Detector, frames: list[np.ndarray], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        detector.predict(frames)
    return (time.perf_counter() - started) / (repeats * len(frames))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="calls per measurement")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--model", default="yolov8n.pt")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    frames = [first_frame(VIDEOS[index % len(VIDEOS)]) for index in range(args.streams)]
    detector = Detector(DetectorConfig(model=resolve_model_path(args.model), imgsz=args.imgsz))
    batched(detector, frames, 2)  # warm both paths: allocator, kernels for this batch size
    one_by_one(detector, frames, 2)
    ratios = []
    for index in range(args.rounds):
        runs = [("single", one_by_one), ("batch", batched)]
        if index % 2:
            runs.reverse()
        timed = {name: run(detector, frames, args.repeats) for name, run in runs}
        ratio = timed["single"] / timed["batch"]
        ratios.append(ratio)
        print(
            f"round {index + 1}: one call per frame {timed['single'] * 1000:7.1f} ms/frame, "
            f"one batch of {args.streams} {timed['batch'] * 1000:7.1f} ms/frame, speed-up {ratio:.3f}"
        )
    print(f"median speed-up of batching {args.streams} streams: {statistics.median(ratios):.3f} (> 1: batch faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
