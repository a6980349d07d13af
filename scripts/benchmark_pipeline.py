#!/usr/bin/env python3
"""Pipeline throughput vs the bare model, measured in one run on the same frames.

(a) bare: `model.predict` over frames decoded beforehand (the model's own ceiling), on every runtime
    installed here (torch, openvino, onnx: the .pt exported once, cached as the node does it);
(b) smarteye: an EdgeNode on the same video file with the fastest runtime, processing every frame (file
    source with realtime=false), with decoding, ByteTrack, the event lifecycle, MQTT to a real broker, and
    the annotated live video (drawing + one H.264 encoder feeding a UDP MPEG-TS output) on; as the node runs,
    i.e. with as many detection workers as the runtime infers frames at once (OpenVINO: parallel infer requests
    of a THROUGHPUT-compiled model; (a) keeps ultralytics' own LATENCY-compiled model, one frame at a time);
(a') bare, the fastest runtime with the node's parallel infer requests all busy (threads feeding them, no
    pipeline): the ceiling of (b)'s detection, reported beside the ratio to (a);
(c) naive: the loop a user would write, `model.track(source=video, stream=True)`, on the same runtime.
(b) and (c) are timed in steady state, as (a) is: from their `--skip`-th frame on (opening the source, the node's
threads and first frames' set-up are behind them), for `--frames` frames.
The fastest runtime is picked by a short bare pass first (and compared with what `backend: auto` picks).
Rounds rotate the order so machine drift hits all alike; the report gives each round's figures, the
per-round ratios (pipeline / bare of the same runtime, same round) and their medians. Usage:

    python scripts/benchmark_pipeline.py [--frames 300] [--skip 30] [--rounds 3] [--model yolov8n.pt] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

from edge.assets import sample_media
from edge.config import parse_config
from edge.detect.bench import host_backends, load_detectors
from edge.detect.detector import Detector, resolve_model_path
from edge.detect.runtime import choose_backend, configure_threads, exported_backend
from edge.factory import build_node
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.ports import free_udp_port


def decode_frames(video: Path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == count:
                break
    return frames


def bare_model_fps(detector: Detector, frames: list[np.ndarray]) -> float:
    configure_threads(detector.backend, force=True)  # the thread pools this runtime gets when it runs alone
    model, args = detector.model, detector.predict_args
    start = time.perf_counter()
    for image in frames:
        model.predict(image, **args)
    return len(frames) / (time.perf_counter() - start)


def bare_parallel_fps(detector: Detector, frames: list[np.ndarray]) -> float | None:
    """(a') the fastest runtime as the node runs it, pipeline aside: its parallel infer requests all kept busy by as
    many threads pulling the same frames (None where the runtime infers one frame at a time). Ultralytics' own
    loop (a) uses one LATENCY-compiled request; this is the ceiling the node's detection workers could reach."""
    workers = detector.parallelize()
    if workers < 2:
        return None
    configure_threads(detector.backend, force=True)
    todo, lock = iter(frames), threading.Lock()

    def work() -> None:
        while True:
            with lock:
                image = next(todo, None)
            if image is None:
                return
            detector.detect(image)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(frames) / (time.perf_counter() - start)


def fastest_backend(detectors: dict[str, Detector], frames: list[np.ndarray]) -> tuple[str, dict[str, float]]:
    """The runtime with the highest bare fps over a short pass (the median of three passes each)."""
    fps = {name: statistics.median(bare_model_fps(d, frames) for _ in range(3)) for name, d in detectors.items()}
    return max(fps, key=fps.__getitem__), fps


def pipeline_fps(
    detector: Detector, video: Path, count: int, broker_url: str, spool: Path, imgsz: int, skip: int
) -> tuple[float, float, int, int]:
    config = parse_config(
        {
            "node": "bench",
            "sources": [{"name": "bench", "url": str(video), "realtime": False}],
            "detector": {"model": detector.config.model, "imgsz": imgsz, "backend": detector.backend},
            "mqtt": {"url": broker_url, "spool_dir": str(spool)},
            # Live video on, as a watched node runs: a UDP MPEG-TS output is a consumer, so every processed
            # frame is also drawn on and H.264-encoded (a node nobody watches skips both).
            "metrics": {"port": 0},
            "video": {"whep": {"port": 0}, "udp_outputs": {"bench": f"udp://127.0.0.1:{free_udp_port()}"}},
        },
        "benchmark",
    )
    configure_threads(detector.backend, force=True)
    # One-time set-up out of the timing, as the bare runs' warm-up is: the parallel infer requests the node's
    # warm-up would otherwise compile (Detector.parallelize; a no-op once done, and for runtimes without them).
    workers = detector.parallelize()
    node = build_node(config, detector=detector)
    stats = node.pipeline.stats["bench"]
    started = time.time()
    node.start()
    # Steady state, as the bare runs are timed: from the `skip`-th processed frame (start-up, the first frames'
    # lazy set-up and the source's opening are behind) to `count` frames later, each end read as the finish time
    # of the frame that was last at that moment. Coarse polling on purpose: a tight poll would steal the GIL.
    first = _wait_processed(stats, skip)
    last = _wait_processed(stats, skip + count)
    events = node.events_published
    encoded = node.video.encoders["bench"].frames_encoded if node.video else 0
    node.stop()
    assert node.detection_workers == workers, (node.detection_workers, workers)
    # Also from the start, start-up included (how this was timed before): shown beside, never the ratio.
    return (last[0] - first[0]) / (last[1] - first[1]), last[0] / (last[1] - started), events, encoded


def _wait_processed(stats, at_least: int) -> tuple[int, float]:
    """(frames processed, finish time of the latest) once at least `at_least` frames are processed."""
    while stats.processed < at_least:
        time.sleep(0.05)
    while True:
        processed, done = stats.processed, stats.done_times[-1]
        if stats.processed == processed:  # no frame finished between the two reads
            return processed, done


def naive_track_fps(model_path: str, video: Path, count: int, imgsz: int, skip: int) -> float:
    """`model_path`: the file the fastest runtime loaded (the OpenVINO export, say), so the loop runs on it too."""
    from ultralytics import YOLO

    configure_threads(exported_backend(model_path) or "torch", force=True)
    model = YOLO(model_path, task="detect")
    for _ in range(15):  # the same warm-up as (a) and (b) got
        model.predict(np.zeros((576, 768, 3), dtype=np.uint8), imgsz=imgsz, verbose=False)
    start, done = 0.0, 0
    for _ in model.track(source=str(video), stream=True, imgsz=imgsz, verbose=False, persist=True):
        done += 1
        if done == skip:  # timed from the same frame as (b)
            start = time.perf_counter()
        if done == skip + count:
            break
    return (done - skip) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolov8n.pt")
    parser.add_argument("--video", default="vtest.avi")
    parser.add_argument("--frames", type=int, default=300, help="frames timed in each run")
    parser.add_argument(
        "--skip", type=int, default=30, help="frames (b) and (c) run before their timing starts (start-up)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--no-naive", action="store_true", help="skip the model.track() comparison")
    parser.add_argument("--backend", action="append", help="runtimes to time bare (default: every one here)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    video = sample_media(args.video)
    model_path = resolve_model_path(args.model)
    frames = decode_frames(video, args.frames)
    if len(frames) < args.frames:
        print(f"{video} has only {len(frames)} frames", file=sys.stderr)
        return 2
    detectors = load_detectors(model_path, args.backend or host_backends(), args.imgsz)
    for detector in detectors.values():  # first calls are slow (allocator, kernels): keep them out of every round
        for image in frames[:15]:
            detector.detect(image)
    fastest, probe = fastest_backend(detectors, frames[:20])
    auto = choose_backend("auto", "cpu")
    print(
        "short bare pass: "
        + ", ".join(f"{name} {fps:.2f} fps" for name, fps in sorted(probe.items(), key=lambda i: -i[1]))
        + f"; fastest: {fastest}; backend auto picks: {auto}",
        flush=True,
    )
    detector = detectors[fastest]
    fastest_path = str(detector.model.ckpt_path)

    rounds = []
    with MosquittoBroker() as broker:
        for index in range(args.rounds):
            # Rotate the order each round so slow drift of the machine favours none of the runs.
            spool = Path(tempfile.mkdtemp(prefix="smarteye-bench-spool-"))
            runs = {
                **{f"bare:{name}": (lambda d=d: bare_model_fps(d, frames)) for name, d in detectors.items()},
                "bare_parallel": lambda: bare_parallel_fps(detector, frames),
                "pipeline": lambda s=spool: pipeline_fps(
                    detector, video, args.frames, broker.url, s, args.imgsz, args.skip
                ),
                "naive": lambda: (
                    None if args.no_naive else naive_track_fps(fastest_path, video, args.frames, args.imgsz, args.skip)
                ),
            }
            shift = index % len(runs)
            order = list(runs)[shift:] + list(runs)[:shift]
            results = {name: runs[name]() for name in order}
            bare_by_backend = {name: results[f"bare:{name}"] for name in detectors}
            bare = bare_by_backend[fastest]
            (pipe, pipe_from_start, events, encoded), naive = results["pipeline"], results["naive"]
            row = {
                "detection_workers": detector.slots.count,
                "bare_fps": bare,
                "bare_fps_by_backend": bare_by_backend,
                "pipeline_fps": pipe,
                "ratio": pipe / bare,
                "pipeline_fps_from_start": pipe_from_start,
                "ratio_from_start": pipe_from_start / bare,
                "events": events,
                "encoded": encoded,
            }
            if naive is not None:
                row |= {"naive_track_fps": naive, "naive_ratio": naive / bare}
            parallel = results["bare_parallel"]
            if parallel is not None:
                row |= {"bare_parallel_fps": parallel, "ratio_to_parallel": pipe / parallel}
            rounds.append(row)
            bare_text = "  ".join(f"{name} {fps:6.2f}" for name, fps in bare_by_backend.items())
            naive_text = f"  naive model.track {naive:6.2f} fps ({naive / bare:.3f})" if naive else ""
            workers = row["detection_workers"]
            parallel_text = f"  bare {fastest} x{workers} requests {parallel:6.2f} fps" if parallel else ""
            print(
                f"round {index + 1}: bare fps {bare_text}  smarteye pipeline ({fastest}) {pipe:6.2f} fps "
                f"(ratio {pipe / bare:.3f}; from the start {pipe_from_start / bare:.3f}; "
                f"{events} MQTT events, {encoded} frames H.264-encoded){naive_text}{parallel_text}",
                flush=True,
            )

    summary = {
        key: statistics.median(r[key] for r in rounds)
        for key in (
            "bare_fps",
            "pipeline_fps",
            "ratio",
            "ratio_from_start",
            "naive_track_fps",
            "naive_ratio",
            "bare_parallel_fps",
            "ratio_to_parallel",
        )
        if key in rounds[0]
    }
    by_backend = {name: statistics.median(r["bare_fps_by_backend"][name] for r in rounds) for name in detectors}
    print(
        f"median over {len(rounds)} rounds of {args.frames} frames of {video.name} ({frames[0].shape[1]}x"
        f"{frames[0].shape[0]}), {Path(model_path).name} at imgsz {args.imgsz}:"
    )
    for name, fps in sorted(by_backend.items(), key=lambda i: -i[1]):
        mark = "  (fastest: pipeline and naive loop run on it)" if name == fastest else ""
        print(f"  bare {name:<9} {fps:7.2f} fps  {1000 / fps:6.1f} ms/frame{mark}")
    print(
        f"  pipeline ({fastest}) {summary['pipeline_fps']:.2f} fps, pipeline/bare ratio {summary['ratio']:.3f} "
        f"(target >= 0.9; timed from the node's start instead: {summary['ratio_from_start']:.3f})"
        + (
            f"; naive model.track {summary['naive_track_fps']:.2f} fps, ratio {summary['naive_ratio']:.3f}"
            if "naive_ratio" in summary
            else ""
        )
        + f"; backend auto picks {auto}{'' if auto == fastest else ' (NOT the fastest in this run)'}"
    )
    if "ratio_to_parallel" in summary:
        print(
            f"  bare {fastest} with the node's {rounds[0]['detection_workers']} parallel infer requests (no pipeline) "
            f"{summary['bare_parallel_fps']:.2f} fps; pipeline / that {summary['ratio_to_parallel']:.3f}"
        )
    summary["bare_fps_by_backend"] = by_backend
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "video": video.name,
                    "model": Path(model_path).name,
                    "fastest_backend": fastest,
                    "auto_backend": auto,
                    "imgsz": args.imgsz,
                    "frames": args.frames,
                    "skip": args.skip,
                    "rounds": rounds,
                    "median": summary,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
