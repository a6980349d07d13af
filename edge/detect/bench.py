"""ms/frame of one model on every runtime installed on this host, on real frames, so the choice of
`detector.backend` (and what `auto` picks) can be checked on the machine that will run it."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from edge.config.detector import DetectorConfig
from edge.detect.detector import Detector
from edge.detect.runtime import choose_backend, configure_threads, installed


@dataclass(slots=True)
class BackendTiming:
    backend: str
    rounds_ms: list[float]  # mean ms/frame of each round
    model: str  # the file that ran (the export for a non-torch runtime)

    @property
    def ms(self) -> float:
        return statistics.median(self.rounds_ms)

    @property
    def fps(self) -> float:
        return 1000 / self.ms


def decode_frames(video: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of a video as BGR arrays (decoded before timing: only inference is measured)."""
    frames: list[np.ndarray] = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == count:
                break
    if not frames:
        raise ValueError(f"{video} has no video frames")
    return frames


def host_backends(device: str = "cpu") -> list[str]:
    """The runtimes worth timing here: torch always, the others whose packages are installed (TensorRT on CUDA)."""
    names = ["torch", "openvino", "onnx"]
    if device != "cpu" and choose_backend("auto", device) == "tensorrt":
        names.append("tensorrt")
    return [name for name in names if name == "torch" or installed(name)]


def load_detectors(model: str, backends: list[str], imgsz: int, device: str = "cpu") -> dict[str, Detector]:
    """One detector per runtime (exporting the .pt on first use: cached)."""
    return {b: Detector(DetectorConfig(model=model, imgsz=imgsz, backend=b, device=device)) for b in backends}


def time_backends(detectors: dict[str, Detector], frames: list[np.ndarray], rounds: int) -> list[BackendTiming]:
    """Mean ms/frame per runtime per round; rounds alternate the runtimes so drift of a shared machine hits all."""
    for detector in detectors.values():  # first calls compile kernels and allocate: keep them out of the rounds
        for image in frames[:3]:
            detector.detect(image)
    timings = {name: BackendTiming(name, [], str(d.model.ckpt_path)) for name, d in detectors.items()}
    for index in range(rounds):
        order = list(detectors)[index % len(detectors) :] + list(detectors)[: index % len(detectors)]
        for name in order:
            detector = detectors[name]
            configure_threads(detector.backend, force=True)  # each runtime with the pools it gets on its own
            start = time.perf_counter()
            for image in frames:
                detector.detect(image)
            timings[name].rounds_ms.append((time.perf_counter() - start) * 1000 / len(frames))
    return list(timings.values())


def table(timings: list[BackendTiming], auto: str) -> list[str]:
    """One line per runtime: median ms/frame, fps, speed-up over torch, and which one `auto` picks."""
    torch = next((t.ms for t in timings if t.backend == "torch"), None)
    lines = [f"{'backend':<10} {'ms/frame':>9} {'fps':>7} {'vs torch':>9}  rounds (ms)"]
    for timing in sorted(timings, key=lambda t: t.ms):
        speedup = f"{torch / timing.ms:8.2f}x" if torch else f"{'-':>9}"
        rounds = " ".join(f"{ms:.1f}" for ms in timing.rounds_ms)
        mark = "  <- auto" if timing.backend == auto else ""
        lines.append(f"{timing.backend:<10} {timing.ms:9.1f} {timing.fps:7.1f} {speedup}  {rounds}{mark}")
    return lines
