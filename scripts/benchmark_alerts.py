"""Webhooks vs the edge pipeline: does a webhook receiver that is down (the station retrying with backoff)
change the edge node's frame rate?

The whole path runs as in production, each part its own process: `smarteye edge` (vtest.avi as a real-
time 10 fps camera → YOLO at 320 → tracking → the demo's site-camera rules without their 30 s cooldown,
clips on → alerts over MQTT) and `smarteye ground-station run` (ingest, store, webhook workers), on a
private Mosquitto. The webhook receiver is a small HTTP server in this process: it checks each
request's signature (401 if wrong) and records the alert message ids it got.

Each round measures two phases, in alternating order: (A) the receiver is up; (B) its port is closed,
so every delivery fails to connect and is retried with backoff (the station's default: after 1, 2, 4, … s).
Per phase, over a window: the edge's processed frames per second and capture → published latency (from
its /metrics), the alert messages it published, the edge's and the station's CPU seconds per second
(/proc), and the station's deliveries (its /metrics). After the rounds the receiver is up, the edge
stops, and the script waits until every alert message the edge published (seen by an MQTT subscriber of
its own) has reached the receiver with a valid signature. PASS: edge fps B/A (the median of the rounds'
ratios) ≥ 0.95, and every alert delivered, none failed, no bad signature. On a shared machine the edge's
frame rate follows the other users' load more than anything here, so the CPU of the machine's other
processes is measured per phase too, and a least-squares fit over the phases gives the receiver's effect
with that load taken out.

    python3 scripts/benchmark_alerts.py                       # 5 rounds × (up, down), 12 s windows
    python3 scripts/benchmark_alerts.py --rounds 1 --window 10 --json out.json
    python3 scripts/benchmark_alerts.py --backoff-max 5           # every pending delivery retried every 5 s
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge.assets import assets_root  # noqa: E402
from ground_station.webhooks import SIGNATURE_HEADER, verify  # noqa: E402
from smarteye.demo import SITE_CAM_RULES  # noqa: E402
from smarteye.sim.broker import MosquittoBroker  # noqa: E402
from smarteye.sim.ports import free_tcp_port  # noqa: E402
from smarteye.wire.topics import ANY, alerts_topic  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TARGET_RATIO = 0.95
NODE, STREAM, PREFIX = "bench-edge", "cam", "bench/v1"
SECRET = secrets.token_urlsafe(24)
UP, DOWN = "up", "down"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_seconds() -> float:
    """CPU time every core of the machine spent busy (not idle, not waiting for I/O), in seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


def smarteye() -> list[str]:
    script = Path(sys.executable).with_name("smarteye")
    return [str(script)] if script.exists() else [sys.executable, "-m", "smarteye"]


def scrape(url: str) -> Callable[[str, dict[str, str] | None], float]:
    """One scrape of a /metrics; returns sum(name, labels): the sum of the samples matching both."""
    samples = [s for f in text_string_to_metric_families(httpx.get(url, timeout=5).text) for s in f.samples]

    def total(name: str, labels: dict[str, str] | None = None) -> float:
        wanted = (labels or {}).items()
        return sum(s.value for s in samples if s.name == name and wanted <= s.labels.items())

    return total


# -- the webhook receiver (in this process; its CPU is not counted: it is another system) ------------
class Receiver:
    """Checks the signature of every POST (200 or 401) and records the alert message ids; `up()` and
    `down()` open and close its port (down: the station's connections are refused)."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/smarteye"
        self.lock = threading.Lock()
        self.ids: set[str] = set()  # valid, deduplicated on the body's id (deliveries are at least once)
        self.valid = 0
        self.invalid = 0
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        if self._server is not None:
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signed = verify(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
                with receiver.lock:
                    if signed:
                        receiver.valid += 1
                        receiver.ids.add(json.loads(body)["id"])
                    else:
                        receiver.invalid += 1
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def counts(self) -> tuple[int, int, set[str]]:
        with self.lock:
            return self.valid, self.invalid, set(self.ids)


class AlertWatch:
    """Every alert message id the edge publishes, as a subscriber on the broker sees it (QoS 1)."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{os.getpid()}")
        self.client.on_connect = lambda c, *_: c.subscribe(alerts_topic(PREFIX, NODE, ANY), qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("the alert subscriber could not subscribe")

    def _message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.ids.add(json.loads(message.payload)["id"])

    def seen(self) -> set[str]:
        with self.lock:
            return set(self.ids)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- the system under test -------------------------------------------------------------------------
class System:
    def __init__(self, workdir: Path, model: Path, video: Path, broker_url: str, webhook_url: str,
                 backoff_max_s: float | None) -> None:  # fmt: skip
        self.workdir = workdir
        port, edge_metrics = free_tcp_port(), free_tcp_port()
        self.station_metrics = f"http://127.0.0.1:{port}/metrics"
        self.edge_metrics = f"http://127.0.0.1:{edge_metrics}/metrics"
        station_config = workdir / "station.yaml"
        station_config.write_text(yaml.safe_dump({
            "database_url": f"sqlite:///{workdir / 'ground.sqlite'}",
            "mqtt": {"url": broker_url, "client_id": "bench-station", "topic_prefix": PREFIX},
            "web": {"port": port},
            "webhooks": {"endpoints": [{"url": webhook_url, "secret": SECRET}], "max_attempts": 1000,  # none fails
                         **({"backoff_max_s": backoff_max_s} if backoff_max_s else {})},  # else 1 s doubling to 600
        }))  # fmt: skip
        rules = json.loads(json.dumps(SITE_CAM_RULES))  # tuples → lists, for YAML
        for rule in rules["rules"]:
            rule["cooldown_s"] = 0  # every situation alerts (the demo waits 30 s after one ends)
        edge_config = workdir / "edge.yaml"
        edge_config.write_text(yaml.safe_dump({
            "node": NODE,
            "sources": [{"name": STREAM, "url": str(video), "loop": True, "realtime": True, "rules": rules}],
            "detector": {"model": str(model), "imgsz": 320, "conf": 0.2},  # conf as in the demo
            "mqtt": {"url": broker_url, "topic_prefix": PREFIX, "spool_dir": str(workdir / "spool")},
            "video": {"whep": {"enabled": False}},  # the encoder runs for the clips (a fan-out consumer)
            "metrics": {"port": edge_metrics},
            "status_interval_s": 2.0,
        }))  # fmt: skip
        self.station = subprocess.Popen(
            [*smarteye(), "ground-station", "run", "--config", str(station_config), "--log-level", "warning"],
            stdout=(workdir / "station.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait(lambda: scrape(self.station_metrics)("smarteye_mqtt_connected") == 1, 60, "station")
        self.edge = subprocess.Popen(
            [*smarteye(), "edge", "--config", str(edge_config), "--log-level", "warning"],
            stdout=(workdir / "edge.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait(lambda: scrape(self.edge_metrics)("smarteye_edge_frames_processed_total") > 0, 180, "edge")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.station, getattr(self, "edge", None)):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"a process exited ({proc.returncode}); see {self.workdir}/*.log")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the {what} did not come up; see {self.workdir}/{what}.log")

    def stop_edge(self) -> None:
        """SIGTERM: the node stops its sources and flushes what it has to publish."""
        if self.edge.poll() is None:
            self.edge.terminate()
            try:
                self.edge.wait(30)
            except subprocess.TimeoutExpired:
                self.edge.kill()

    def stop(self) -> None:
        self.stop_edge()
        self.station.terminate()
        try:
            self.station.wait(20)
        except subprocess.TimeoutExpired:
            self.station.kill()


def reading(system: System, receiver: Receiver) -> dict[str, float]:
    """The counters a phase is the difference of, read at one moment."""
    edge, station = scrape(system.edge_metrics), scrape(system.station_metrics)
    valid, invalid, _ = receiver.counts()
    return {
        "time": time.monotonic(),
        "edge_cpu": cpu_seconds(system.edge.pid),
        "station_cpu": cpu_seconds(system.station.pid),
        "machine_busy": machine_busy_seconds(),
        "own_cpu": cpu_seconds(os.getpid()),  # the receiver and the scrapes
        "frames_in": edge("smarteye_edge_frames_in_total"),
        "processed": edge("smarteye_edge_frames_processed_total"),
        "dropped": edge("smarteye_edge_frames_dropped_total"),
        "latency_sum": edge("smarteye_edge_capture_to_published_seconds_sum"),
        "latency_count": edge("smarteye_edge_capture_to_published_seconds_count"),
        "alerts_published": edge("smarteye_edge_alerts_published_total"),
        "alerts_stored": station("smarteye_alert_messages_stored_total"),
        "delivered": station("smarteye_webhook_deliveries", {"state": "delivered"}),
        "pending": station("smarteye_webhook_deliveries", {"state": "pending"}),
        "failed": station("smarteye_webhook_deliveries", {"state": "failed"}),
        "attempts_error": station("smarteye_webhook_attempts_total", {"result": "error"}),
        "received_valid": valid,
        "received_invalid": invalid,
    }


def measure(system: System, receiver: Receiver, phase: str, window: float, settle: float) -> dict[str, Any]:
    (receiver.up if phase == UP else receiver.down)()
    time.sleep(settle)  # down: the deliveries start failing (up: the backlog goes out at each one's next retry)
    before = reading(system, receiver)
    time.sleep(window)
    after = reading(system, receiver)
    elapsed = after["time"] - before["time"]
    delta = {key: after[key] - before[key] for key in before}
    latencies = delta["latency_count"]
    return {
        "phase": phase,
        "edge_fps": delta["processed"] / elapsed,
        "source_fps": delta["frames_in"] / elapsed,
        "dropped": int(delta["dropped"]),
        "capture_to_published_ms": 1000 * delta["latency_sum"] / latencies if latencies else None,
        "edge_cpu": delta["edge_cpu"] / elapsed,
        "station_cpu": delta["station_cpu"] / elapsed,
        # What else ran on the machine meanwhile (other users, this script's own work left out): on a shared
        # machine the edge's frame rate follows this more than anything the station does.
        "others_cpu": (delta["machine_busy"] - delta["edge_cpu"] - delta["station_cpu"] - delta["own_cpu"]) / elapsed,
        "alerts_published": int(delta["alerts_published"]),
        "alerts_stored": int(delta["alerts_stored"]),
        "delivered": int(delta["delivered"]),
        "failed_attempts": int(delta["attempts_error"]),
        "received_valid": int(delta["received_valid"]),
        "pending_at_end": int(after["pending"]),
        "failed_at_end": int(after["failed"]),
    }


def drain(system: System, receiver: Receiver, watch: AlertWatch, timeout: float) -> dict[str, Any]:
    """Receiver up, edge stopped: wait until every alert message the edge published has arrived, signed."""
    receiver.up()
    system.stop_edge()
    time.sleep(1.0)  # the last QoS-1 messages reach the subscriber
    published = watch.seen()
    deadline = time.monotonic() + timeout
    while True:
        station = scrape(system.station_metrics)
        pending = station("smarteye_webhook_deliveries", {"state": "pending"})
        _, _, received = receiver.counts()
        if (pending == 0 and published <= received) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(0.5)  # the station counts a stored message just after its deliveries may have gone out
    station = scrape(system.station_metrics)
    valid, invalid, received = receiver.counts()
    return {
        "published": len(published),
        "stored": int(station("smarteye_alert_messages_stored_total")),
        "delivered": int(station("smarteye_webhook_deliveries", {"state": "delivered"})),
        "pending": int(pending),
        "failed": int(station("smarteye_webhook_deliveries", {"state": "failed"})),
        "received_unique_valid": len(received),
        "received_valid_requests": valid,
        "received_invalid_signature": invalid,
        "missing": sorted(published - received),
        "failed_attempts": int(station("smarteye_webhook_attempts_total", {"result": "error"})),
    }


def load_adjusted(results: list[dict[str, Any]]) -> tuple[float, float, float] | None:
    """Least squares over the phases: edge fps = a + b · (other processes' CPU s/s) + c · [receiver down].
    Returns (b, c, standard error of c): on a shared machine, c is the receiver's effect with the other users'
    load taken out (the ratio alone moves with whichever phase they happened to load). None: too few phases."""
    if len(results) < 4:
        return None
    design = np.array([[1.0, r["others_cpu"], float(r["phase"] == DOWN)] for r in results])
    fps = np.array([r["edge_fps"] for r in results])
    coef, *_ = np.linalg.lstsq(design, fps, rcond=None)
    residual = fps - design @ coef
    covariance = residual @ residual / (len(fps) - 3) * np.linalg.pinv(design.T @ design)
    return float(coef[1]), float(coef[2]), float(np.sqrt(covariance[2, 2]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="more, shorter rounds: the two phases of a round see more alike background load on a shared machine",
    )
    parser.add_argument("--window", type=float, default=12.0, help="seconds measured per phase")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after switching the receiver")
    parser.add_argument(
        "--backoff-max",
        type=float,
        help="the station's backoff_max_s (default: its own, 600 s); "
        "a few seconds retries every pending delivery that often: more work while the receiver is down",
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()

    root = assets_root()
    model, video = (root / "models" / "yolov8n.pt", root / "media" / "vtest.avi") if root else (None, None)
    if model is None or not model.exists() or video is None or not video.exists():
        print("needs models/yolov8n.pt and media/vtest.avi: set SMARTEYE_ASSETS", file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="smarteye-alerts-") as tmp, MosquittoBroker() as broker:
        watch = AlertWatch(broker)
        receiver.up()
        system = System(Path(tmp), model, video, broker.url, receiver.url, args.backoff_max)
        try:
            time.sleep(5)  # model warm-up
            for round_index in range(args.rounds):
                for phase in (UP, DOWN) if round_index % 2 == 0 else (DOWN, UP):
                    row = measure(system, receiver, phase, args.window, args.settle)
                    results.append(row)
                    latency = row["capture_to_published_ms"]
                    print(
                        f"round {round_index + 1} receiver {phase:4s}: edge {row['edge_fps']:.2f} fps processed "
                        f"(source {row['source_fps']:.2f}, {row['dropped']} dropped), capture→published "
                        f"{f'{latency:.0f} ms' if latency is not None else '-'}, edge {row['edge_cpu']:.3f} + "
                        f"station {row['station_cpu']:.3f} CPU s/s (other processes {row['others_cpu']:.2f}); "
                        f"alerts published {row['alerts_published']}, "
                        f"stored {row['alerts_stored']}; webhooks delivered {row['delivered']}, failed attempts "
                        f"{row['failed_attempts']}, pending at end {row['pending_at_end']}",
                        flush=True,
                    )
            final = drain(system, receiver, watch, timeout=90.0)  # a delivery's next retry: within its age
        finally:
            system.stop()
            watch.close()
            receiver.down()

    def median(phase: str, key: str) -> float:
        values = [r[key] for r in results if r["phase"] == phase and r[key] is not None]
        return statistics.median(values) if values else float("nan")

    # Each round's two phases are adjacent in time, so their ratio cancels slow drifts in what else the machine
    # runs; the median over rounds is the figure (the ratio of the phases' medians is printed beside it).
    rounds = [{row["phase"]: row for row in results[i : i + 2]} for i in range(0, len(results), 2)]
    ratios = [pair[DOWN]["edge_fps"] / pair[UP]["edge_fps"] for pair in rounds]
    ratio = statistics.median(ratios)
    print()
    for phase in (UP, DOWN):
        print(f"median, receiver {phase:4s}: edge {median(phase, 'edge_fps'):.2f} fps, capture→published "
              f"{median(phase, 'capture_to_published_ms'):.0f} ms, edge {median(phase, 'edge_cpu'):.3f} CPU s/s, "
              f"station {median(phase, 'station_cpu'):.3f} CPU s/s, other processes {median(phase, 'others_cpu'):.2f} "
              f"CPU s/s, {median(phase, 'alerts_published'):.0f} alerts per window")  # fmt: skip
    print(f"after the run (receiver up, edge stopped): {final['published']} alert messages published, "
          f"{final['stored']} stored, {final['delivered']} delivered, {final['pending']} pending, {final['failed']} "
          f"failed; the receiver got {final['received_unique_valid']} of them with a valid signature "
          f"({final['received_valid_requests']} requests, {final['received_invalid_signature']} with a bad one); "
          f"{final['failed_attempts']} failed attempts in all")  # fmt: skip
    every_alert = (not final["missing"] and final["pending"] == 0 and final["failed"] == 0
                   and final["received_invalid_signature"] == 0 and final["published"] > 0)  # fmt: skip
    if final["missing"]:
        print(f"missing at the receiver: {', '.join(final['missing'][:10])}")
    verdict = "PASS" if ratio >= TARGET_RATIO and every_alert else "FAIL"
    per_round = ", ".join(f"{r:.3f}" for r in ratios)
    of_medians = median(DOWN, "edge_fps") / median(UP, "edge_fps")
    print(f"edge fps receiver down / up: {ratio:.3f}, the median of the rounds' ratios ({per_round}; ratio of the "
          f"medians {of_medians:.3f}; target ≥ {TARGET_RATIO}); every alert delivered signed: "
          f"{'yes' if every_alert else 'no'} {verdict}")  # fmt: skip
    adjusted = load_adjusted(results)
    if adjusted is not None:
        per_cpu, down, error = adjusted
        print(f"fit over the phases: edge fps {per_cpu:+.2f} per CPU s/s of other processes, {down:+.2f} ± {error:.2f} "
              f"with the receiver down (its effect with the machine's other load taken out)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rounds": results, "ratio": ratio, "round_ratios": ratios, "final": final,
                                         "load_adjusted": adjusted, "verdict": verdict}, indent=2))  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
