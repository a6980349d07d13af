"""Live-video fan-out benchmark: CPU of the edge node + ground station with 1 and with 10 WebRTC viewers.

The whole path runs as in production, each part its own process: `smarteye edge` (vtest.avi as a real-
time 10 fps camera → YOLO → tracking → annotation → one H.264 encoder → uplink) and `smarteye
ground-station run` (relay → WHEP). Viewers are aiortc WHEP clients in a third process, logged in
like a browser; their CPU is not counted (a browser decodes on the viewer's machine).

For each round and viewer count the script waits until every viewer plays, then reads the edge's
and the station's CPU time (utime + stime, /proc) over a window and divides by the window: CPU
seconds per second. The ratio (10 viewers / 1 viewer, medians over rounds, alternating order) is
what fan-out without per-viewer encoding costs; the target is ≤ 1.1. The encoded frame rate seen at
the station is printed beside it, to show both phases did the same detection work.

The live video runs at the camera's rate (every source frame encoded, boxes carried between detections), so
per stream the script also prints the frames the camera delivered and the encoder encoded per second, the
frames it had to drop, and the edge CPU per stream (the node runs one camera here: the whole edge process), with
the encoder thread's own CPU share (draw + convert + encode, thread CPU time s/s).

    python3 scripts/benchmark_live_viewers.py --video gopro_karma.mp4   # a 29.97 fps camera instead of 10 fps

`--boxes page` (the default, as the node's) forwards an H.264 camera's packets unchanged to the viewers (the page
draws the boxes; no encoder runs); `--boxes burn_in` encodes every frame with the boxes burned in. The camera is a
file read in real time, or with `--rtsp` the same file served by the simulated RTSP camera (GStreamer, H.264
constrained baseline, as an IP camera sends it; its process is the camera and is not counted). A file or camera
that cannot be forwarded (MPEG-4 vtest.avi, B-frames) is encoded either way: the script prints which it was.

    python3 scripts/benchmark_live_viewers.py --rtsp --boxes page      # passthrough
    python3 scripts/benchmark_live_viewers.py --rtsp --boxes burn_in   # the same camera, encoded

    python3 scripts/benchmark_live_viewers.py                  # 3 rounds × (1, 10 viewers), 15 s windows
    python3 scripts/benchmark_live_viewers.py --rounds 1 --window 8 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge.assets import assets_root  # noqa: E402
from scripts.station_processes import StationAndEdge, viewer_headers  # noqa: E402
from smarteye.sim.broker import MosquittoBroker  # noqa: E402
from smarteye.sim.ports import free_tcp_port  # noqa: E402
from smarteye.sim.rtsp_server import RtspServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TARGET_RATIO = 1.1


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# -- viewers (their own process) -------------------------------------------------------------------
def run_viewers(url: str, station: str, user: str, password: str, count: int, stop: Any, results: Any) -> None:
    from smarteye.sim.whep_viewer import WhepViewer

    async def main() -> None:
        headers = await viewer_headers(station, user, password)
        viewers = [WhepViewer(url, headers=headers) for _ in range(count)]
        # All at once: started one by one, the first ones already decode full-rate video in this process while
        # the last ones negotiate, and on a loaded 2-core box their offers then time out.
        await asyncio.gather(*(viewer.start() for viewer in viewers))
        marks: dict[str, Any] = {}
        while not stop.is_set():
            if "playing" not in marks and all(v.stats.frames > 0 for v in viewers):
                marks["playing"] = time.time()
                results.put({"playing": True})
            await asyncio.sleep(0.1)
        frames = [v.stats.frames for v in viewers]
        latencies = [statistics.median(v.stats.latencies) for v in viewers if v.stats.latencies]
        for viewer in viewers:
            await viewer.stop()
        results.put({"frames": frames, "latency_s": statistics.median(latencies) if latencies else None})

    asyncio.run(main())


# -- the system under test -------------------------------------------------------------------------
class System(StationAndEdge):
    """The station and one edge node on `video` as a real-time camera, YOLO at 320, uplinked."""

    def __init__(self, workdir: Path, model: Path, video: Path | str, broker_url: str, boxes: str = "page") -> None:
        """`video`: a file (read in real time) or an rtsp:// URL."""
        super().__init__(workdir, broker_url, node="bench-edge", user="bench")
        source: dict[str, Any] = {"name": "cam", "url": str(video)}
        if isinstance(video, Path):
            source |= {"loop": True, "realtime": True}
        self.edge_whep = f"http://127.0.0.1:{free_tcp_port()}"
        edge_config = workdir / "edge.yaml"
        edge_config.write_text(yaml.safe_dump({
            "node": "bench-edge",
            "sources": [source],
            "detector": {"model": str(model), "imgsz": 320},
            "mqtt": {"url": broker_url, "spool_dir": str(workdir / "spool")},
            "video": {"whep": {"port": int(self.edge_whep.rsplit(":", 1)[1])},  # only to read encoder figures
                      "live": {"boxes": boxes},
                      "uplink": {"url": self.station_url, "token": self.token}},
        }))  # fmt: skip
        self.start_edge(edge_config)

    def stream(self, timeout: float = 120) -> dict[str, Any]:
        """Wait until the station relays the edge's stream; return its row."""
        return self.live_streams(1, timeout)[0]


def measure(system: System, viewers: int, window: float) -> dict[str, Any]:
    url = f"{system.station_url}/api/whep/bench-edge/cam"
    context = mp.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    process = context.Process(
        target=run_viewers, args=(url, system.station_url, system.user, system.password, viewers, stop, results)
    )
    process.start()
    results.get(timeout=120)  # every viewer is playing
    time.sleep(2.0)  # past the join: keyframes, ICE, DTLS
    pids = {"edge": system.edge.pid, "station": system.station.pid}
    encoder_before, encoder_started = httpx.get(f"{system.edge_whep}/streams").json()[0], time.monotonic()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - started
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    fps = system.stream()["fps"]
    encoder, encoder_elapsed = httpx.get(f"{system.edge_whep}/streams").json()[0], time.monotonic() - encoder_started
    stop.set()
    summary = results.get(timeout=60)
    process.join(30)
    cpu = {name: (after[name] - before[name]) / elapsed for name in pids}
    streams = 1  # the edge runs one camera here: its whole CPU is that stream's

    def rate(key: str) -> float:
        return (encoder[key] - encoder_before[key]) / encoder_elapsed

    return {
        "viewers": viewers,
        "edge_cpu": cpu["edge"],
        "edge_cpu_per_stream": cpu["edge"] / streams,
        "encoder_cpu": rate("encode_cpu_seconds"),
        "source_fps": rate("source_frames"),
        "encoded_fps": rate("frames_encoded"),
        "dropped_fps": rate("frames_replaced"),
        "station_cpu": cpu["station"],
        "total_cpu": cpu["edge"] + cpu["station"],
        "stream_fps": fps,
        "min_frames_per_viewer": min(summary["frames"]),
        "latency_s": summary["latency_s"],
        "encode_ms": encoder["encode_ms"],
        "forwarded_fps": rate("frames_forwarded"),
        "boxes": encoder["boxes"],
        "passthrough_refused": encoder["passthrough_refused"],
        "keyframes": encoder["keyframes"] - encoder_before["keyframes"],
        "keyframe_requests": encoder["keyframe_requests"] - encoder_before["keyframe_requests"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=15.0, help="seconds of CPU measurement per phase")
    parser.add_argument("--many", type=int, default=10, help="the larger number of viewers")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--video", default="vtest.avi", help="the camera: a file under the assets' media/")
    parser.add_argument("--boxes", choices=("page", "burn_in"), default="page", help="video.live.boxes of the node")
    parser.add_argument("--rtsp", action="store_true", help="serve the file over the simulated RTSP camera (H.264)")
    args = parser.parse_args()

    root = assets_root()
    model, video = (root / "models" / "yolov8n.pt", root / "media" / args.video) if root else (None, None)
    if model is None or not model.exists() or video is None or not video.exists():
        print(f"needs models/yolov8n.pt and media/{args.video}: set SMARTEYE_ASSETS", file=sys.stderr)
        return 2
    results = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="smarteye-viewers-"))
        broker = stack.enter_context(MosquittoBroker())
        camera: Path | str = video
        if args.rtsp:
            camera = stack.enter_context(RtspServer({"/cam": video}, loop=True)).url("/cam")
        system = System(Path(tmp), model, camera, broker.url, args.boxes)
        try:
            system.stream()
            time.sleep(5)  # model warm-up
            for round_index in range(args.rounds):
                order = (1, args.many) if round_index % 2 == 0 else (args.many, 1)
                for viewers in order:
                    row = measure(system, viewers, args.window)
                    results.append(row)
                    print(
                        f"round {round_index + 1} viewers {viewers:3d}: edge {row['edge_cpu']:.3f} + station "
                        f"{row['station_cpu']:.3f} = {row['total_cpu']:.3f} CPU s/s; stream {row['stream_fps']:.1f} "
                        f"fps; every viewer got ≥ {row['min_frames_per_viewer']} frames; capture→decoded "
                        f"{(row['latency_s'] or 0) * 1000:.0f} ms; encoding {row['encode_ms']} ms/frame, "
                        f"{row['keyframes']} keyframes ({row['keyframe_requests']} requested) in the window; "
                        f"camera {row['source_fps']:.1f} fps, encoded {row['encoded_fps']:.1f} fps "
                        f"(dropped {row['dropped_fps']:.2f}/s), edge CPU per stream {row['edge_cpu_per_stream']:.3f} "
                        f"of which encoder {row['encoder_cpu']:.3f}; boxes {row['boxes']}, forwarded "
                        f"{row['forwarded_fps']:.1f} fps {row['passthrough_refused'] or ''}",
                        flush=True,
                    )
        finally:
            system.stop()

    def median(viewers: int, key: str) -> float:
        return statistics.median(r[key] for r in results if r["viewers"] == viewers)

    one, many = median(1, "total_cpu"), median(args.many, "total_cpu")
    ratio = many / one
    print()
    print(f"median CPU s/s   1 viewer: edge {median(1, 'edge_cpu'):.3f}, station {median(1, 'station_cpu'):.3f}, "
          f"total {one:.3f}")  # fmt: skip
    print(f"median CPU s/s {args.many:2d} viewers: edge {median(args.many, 'edge_cpu'):.3f}, station "
          f"{median(args.many, 'station_cpu'):.3f}, total {many:.3f}")  # fmt: skip
    for count in (1, args.many):
        camera, encoded = median(count, "source_fps"), median(count, "encoded_fps")
        print(f"live video at full rate, {count:2d} viewer(s): camera {camera:.1f} fps, "
              f"encoded {encoded:.1f} fps ({encoded / max(camera, 1e-9):.2f}×), "
              f"forwarded {median(count, 'forwarded_fps'):.1f} fps, "
              f"edge CPU per stream {median(count, 'edge_cpu_per_stream'):.3f} s/s "
              f"(encoder {median(count, 'encoder_cpu'):.3f})")  # fmt: skip
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"ratio {args.many} viewers / 1 viewer: {ratio:.3f} (target ≤ {TARGET_RATIO}) {verdict}")
    if args.json:
        args.json.write_text(json.dumps(
            {"rounds": results, "ratio": ratio, "verdict": verdict, "boxes": args.boxes, "rtsp": args.rtsp,
             "video": args.video}, indent=2,
        ))  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
