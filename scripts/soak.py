"""Soak run: the whole system for a long time, sampled, to find what grows.

Real processes as in production: a private Mosquitto, `smarteye ground-station run`, and `smarteye edge`
with two looping real-time sources (vtest.avi and the one-by-one people clip) → YOLO → tracking → events
over MQTT and live video uplinked to the station; two WHEP viewers (aiortc, their own process) watch
one stream each through the station; an MQTT subscriber receives every event.

Every `--interval` seconds it samples the edge and the station: RSS, open descriptors and threads
(/proc), the latency capture → MQTT receipt of the new/update events received in that interval
(p50/p95/p99; an `end` is sent on purpose `end_after_s` after the object's last frame),
and the frames each viewer decoded. After `--warmup` seconds (model loading, caches, the first
clients), growth is the last sample against the first sample after warm-up: RSS in percent (target
< 5 %), descriptors and threads as counts (target: flat). Whenever a process's descriptor count changes
between two samples, the descriptors added and removed are recorded (their /proc/PID/fd targets, sockets
with their TCP/UDP addresses or Unix path), printed and kept in the JSON (`fd_changes` in that sample and
in the growth), so a step in the count says what it was.

    python3 scripts/soak.py                       # 30 minutes, sample every 10 s
    python3 scripts/soak.py --minutes 2 --warmup 45 --json soak.json   # what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge.assets import assets_root  # noqa: E402
from scripts.station_processes import StationAndEdge, viewer_headers  # noqa: E402
from smarteye.sim.broker import MosquittoBroker  # noqa: E402
from smarteye.wire.topics import events_topic  # noqa: E402

NODE = "soak-edge"
STREAMS = {"people": "vtest.avi", "walkers": "intel_one-by-one-person-detection.mp4"}
TARGET_RSS_GROWTH_PCT = 5.0


def process_sample(pid: int, fds: int | None = None) -> dict[str, int]:
    """RSS (KiB), threads and open descriptors of a live process (`fds`: counted already)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")) if fds is None else fds,
    }


def fd_targets(pid: int) -> dict[int, str]:
    """Each open descriptor of a live process and what it points at (readlink of /proc/PID/fd/N)."""
    targets = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:  # closed between the listing and the readlink
            continue
    return targets


_TCP_STATES = {"01": "established", "02": "syn-sent", "06": "time-wait", "07": "close", "08": "close-wait",
               "0A": "listen"}  # fmt: skip


def _address(hex_address: str) -> str:
    """A /proc/net/tcp{,6} address (host byte order words in hex, then the port) as text."""
    import ipaddress

    host, port = hex_address.split(":")
    words = bytes.fromhex(host)
    raw = b"".join(words[i : i + 4][::-1] for i in range(0, len(words), 4))  # each 32-bit word is little-endian
    return f"{ipaddress.ip_address(raw)}:{int(port, 16)}"


def socket_names(pid: int) -> dict[str, str]:
    """Socket inode → what it is (protocol, local → remote address and state, or the Unix path), as the
    process's network namespace lists them in /proc/PID/net."""
    names: dict[str, str] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            state = _TCP_STATES.get(fields[3], fields[3]) if proto.startswith("tcp") else ""
            names[fields[9]] = f"{proto} {_address(fields[1])} -> {_address(fields[2])} {state}".rstrip()
    try:
        unix = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except OSError:
        unix = []
    for line in unix:
        fields = line.split()
        if len(fields) >= 7:
            names[fields[6]] = f"unix {fields[7] if len(fields) > 7 else '(unnamed)'}"
    return names


def fd_changes(pid: int, before: dict[int, str], after: dict[int, str]) -> dict[str, list[str]]:
    """The descriptors opened and closed between two listings ("fd: target", sockets described)."""
    added = {fd: target for fd, target in after.items() if before.get(fd) != target}
    removed = {fd: target for fd, target in before.items() if after.get(fd) != target}
    changed = [*added.values(), *removed.values()]
    names = socket_names(pid) if any(target.startswith("socket:[") for target in changed) else {}

    def describe(fd: int, target: str) -> str:
        inode = target.removeprefix("socket:[").removesuffix("]") if target.startswith("socket:[") else None
        return f"{fd}: {target}" + (f" ({names[inode]})" if inode in names else "")

    return {
        "added": [describe(fd, target) for fd, target in sorted(added.items())],
        "removed": [describe(fd, target) for fd, target in sorted(removed.items())],
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency_ms(latencies: list[float]) -> dict[str, int | None]:
    """p50/p95/p99 of latencies in seconds, as whole milliseconds (None when there were none)."""
    points = {q: percentile(latencies, q) for q in (50, 95, 99)}
    return {f"p{q}": None if v is None else round(v * 1000) for q, v in points.items()}


# -- viewers (their own process: a browser decodes on the viewer's machine) ------------------------
def run_viewers(urls: list[str], station: str, user: str, password: str, stop: Any, counts: Any) -> None:
    from smarteye.sim.whep_viewer import WhepViewer

    async def main() -> None:
        headers = await viewer_headers(station, user, password)
        viewers = [WhepViewer(url, headers=headers) for url in urls]
        for viewer in viewers:
            await viewer.start()
        while not stop.is_set():
            for index, viewer in enumerate(viewers):
                counts[index] = viewer.stats.frames
            await asyncio.sleep(0.5)
        for viewer in viewers:
            await viewer.stop()

    asyncio.run(main())


@dataclass
class EventClock:
    """Receives every event and keeps capture → receipt latencies until they are taken."""

    latencies: list[float] = field(default_factory=list)
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            event = json.loads(message.payload)
            capture = float(event["capture_time"])
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.received += 1
            if event.get("type") != "end":  # an end is sent end_after_s after the object's last frame, by design
                self.latencies.append(now - capture)

    def take(self) -> list[float]:
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken


class System(StationAndEdge):
    """The station and the soak's edge node (both sources, uplinked)."""

    def __init__(self, workdir: Path, model: Path, media: Path, broker_url: str) -> None:
        super().__init__(workdir, broker_url, node=NODE, user="soak")
        config = workdir / "edge.yaml"
        config.write_text(yaml.safe_dump({
            "node": NODE,
            "sources": [{"name": name, "url": str(media / file), "loop": True, "realtime": True}
                        for name, file in STREAMS.items()],
            "detector": {"model": str(model), "imgsz": 320},
            "mqtt": {"url": broker_url, "spool_dir": str(workdir / "spool")},
            "metrics": {"port": 0},
            "video": {"whep": {"port": 0}, "uplink": {"url": self.station_url, "token": self.token}},
        }))  # fmt: skip
        self.start_edge(config)

    def wait_live(self, timeout: float = 180) -> None:
        """Until the station relays both streams (the viewers need them)."""
        self.live_streams(len(STREAMS), timeout)


def growth(samples: list[dict[str, Any]], warmup: float) -> dict[str, Any]:
    """Per process: the first sample after warm-up against the last one."""
    after = [s for s in samples if s["t"] >= warmup] or samples[-1:]
    first, last = after[0], samples[-1]
    result: dict[str, Any] = {"from_s": first["t"], "to_s": last["t"]}
    for name in ("edge", "station"):
        a, b = first[name], last[name]
        result[name] = {
            "rss_mib": [round(a["rss_kib"] / 1024, 1), round(b["rss_kib"] / 1024, 1)],
            "rss_growth_pct": round(100 * (b["rss_kib"] - a["rss_kib"]) / a["rss_kib"], 2),
            "fds": [a["fds"], b["fds"]],
            "threads": [a["threads"], b["threads"]],
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds left out of the growth figures")
    parser.add_argument("--json", type=Path, help="write every sample and the growth here too")
    args = parser.parse_args()

    root = assets_root()
    if root is None or not (root / "models" / "yolov8n.pt").exists():
        print("needs models/yolov8n.pt and the sample media: set SMARTEYE_ASSETS", file=sys.stderr)
        return 2
    media = root / "media"
    missing = [f for f in STREAMS.values() if not (media / f).exists()]
    if missing:
        print(f"needs {', '.join(missing)} in {media}: set SMARTEYE_ASSETS", file=sys.stderr)
        return 2

    samples: list[dict[str, Any]] = []
    fd_steps: list[dict[str, Any]] = []  # every change of a process's descriptor count, with what changed
    clock = EventClock()
    context = mp.get_context("spawn")
    stop, counts = context.Event(), context.Array("q", len(STREAMS))
    with tempfile.TemporaryDirectory(prefix="smarteye-soak-") as tmp, MosquittoBroker() as broker:
        subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"soak-{secrets.token_hex(4)}")
        subscriber.on_message = clock.on_message
        subscriber.connect(broker.host, broker.port)
        subscriber.subscribe(events_topic("smarteye/v1", "+", "+"), qos=1)
        subscriber.loop_start()
        system = System(Path(tmp), root / "models" / "yolov8n.pt", media, broker.url)
        viewers = None
        try:
            system.wait_live()
            urls = [f"{system.station_url}/api/whep/{NODE}/{name}" for name in STREAMS]
            viewers = context.Process(
                target=run_viewers, args=(urls, system.station_url, system.user, system.password, stop, counts)
            )
            viewers.start()
            started = time.monotonic()
            previous_frames = [0] * len(STREAMS)
            pids = {"edge": system.edge.pid, "station": system.station.pid}
            previous_fds = {name: fd_targets(pid) for name, pid in pids.items()}
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(max(0.0, args.interval - ((time.monotonic() - started) % args.interval)))
                if system.edge.poll() is not None or system.station.poll() is not None:
                    raise RuntimeError(f"a process exited during the soak; see {tmp}/edge.log, station.log")
                latencies = clock.take()
                frames = list(counts)
                t = round(time.monotonic() - started, 1)
                processes = {}
                for name, pid in pids.items():
                    targets = fd_targets(pid)
                    processes[name] = process_sample(pid, fds=len(targets))
                    if len(targets) != len(previous_fds[name]):  # a step in the count: say what it was
                        change = fd_changes(pid, previous_fds[name], targets)
                        processes[name]["fd_changes"] = change
                        fd_steps.append({"t": t, "process": name, "fds": [len(previous_fds[name]), len(targets)],
                                         **change})  # fmt: skip
                        print(f"{t:7.1f} s  {name} fds {len(previous_fds[name])} → {len(targets)}: "
                              f"+{change['added']} -{change['removed']}", flush=True)  # fmt: skip
                    previous_fds[name] = targets
                sample = {
                    "t": t,
                    "load_1min": round(os.getloadavg()[0], 2),  # the machine's, not ours: figures move with it
                    **processes,
                    "events": len(latencies),
                    "latency_ms": latency_ms(latencies),
                    "viewer_fps": [
                        round((f - p) / args.interval, 1) for f, p in zip(frames, previous_frames, strict=True)
                    ],
                }
                previous_frames = frames
                samples.append(sample)
                print(
                    f"{sample['t']:7.1f} s  edge {sample['edge']['rss_kib'] / 1024:6.1f} MiB "
                    f"{sample['edge']['fds']:4d} fds {sample['edge']['threads']:3d} thr | station "
                    f"{sample['station']['rss_kib'] / 1024:6.1f} MiB {sample['station']['fds']:4d} fds "
                    f"{sample['station']['threads']:3d} thr | {sample['events']:4d} events, latency p50/p95/p99 "
                    f"{sample['latency_ms']['p50']}/{sample['latency_ms']['p95']}/{sample['latency_ms']['p99']} ms"
                    f" | viewers {sample['viewer_fps']} fps",
                    flush=True,
                )
        finally:
            stop.set()
            if viewers is not None:
                viewers.join(30)
            system.stop()
            subscriber.loop_stop()
            subscriber.disconnect()

    result = growth(samples, args.warmup)
    all_latencies = [s["latency_ms"]["p99"] for s in samples if s["t"] >= args.warmup and s["latency_ms"]["p99"]]
    result["latency_p99_ms_median"] = statistics.median(all_latencies) if all_latencies else None
    result["events"] = clock.received
    result["load_1min_median"] = statistics.median(s["load_1min"] for s in samples) if samples else None
    result["fd_changes"] = fd_steps
    print()
    for name in ("edge", "station"):
        g = result[name]
        print(
            f"{name:8s} after warm-up ({result['from_s']:.0f} s → {result['to_s']:.0f} s): RSS {g['rss_mib'][0]} → "
            f"{g['rss_mib'][1]} MiB ({g['rss_growth_pct']:+.2f} %, target < {TARGET_RSS_GROWTH_PCT} %), fds "
            f"{g['fds'][0]} → {g['fds'][1]}, threads {g['threads'][0]} → {g['threads'][1]}"
        )
    print(
        f"events received: {clock.received}; median p99 latency per interval: {result['latency_p99_ms_median']} ms"
        f"; machine load (1-min average, median of the samples): {result['load_1min_median']}"
    )
    for step in fd_steps:
        print(f"{step['process']} descriptors at {step['t']:.0f} s: {step['fds'][0]} → {step['fds'][1]}")
        for what in ("added", "removed"):
            for line in step[what]:
                print(f"  {what} {line}")
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "growth": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
