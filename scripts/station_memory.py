"""Where does the ground station's memory go under a steady stream of messages? (issue 12, soak follow-up)

The soak (scripts/soak.py) showed the station's RSS rising slowly and steadily. This runs the same station
(`GroundStation`, SQLite, as `smarteye ground-station run` builds it) in this process, on a private Mosquitto,
fed by a publisher in its own process that looks like a busy edge node: objects of `new`, updates and `end`
events (each `new` with its JPEG snapshot), alerts with their snapshots, zone counts, telemetry and stream
status, at `--rate` events/s; a logged-in WebSocket client reads `/api/live` the whole time.

Every `--interval` seconds it samples, in the station's process: RSS and descriptors (/proc), what Python
itself holds (tracemalloc), what SQLite holds (sqlite3_memory_used: its page caches and statements, which
tracemalloc cannot see), the SQLAlchemy pool, and the machine's load. At the end it prints the Python
allocations that grew most between the end of `--warmup` and the last sample, by traceback: an unbounded
per-event structure shows up there by file and line.

    python3 scripts/station_memory.py --minutes 5 --rate 50
    python3 scripts/station_memory.py --minutes 5 --rate 50 --cache-kib 500   # a smaller SQLite page cache
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

NODE = "mem-edge"
STREAMS = ("cam1", "cam2")
USER = "probe"


def sqlite_memory_used() -> int | None:
    """Bytes SQLite holds in this process (all connections: page caches, schema, statements), or None."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    library = ctypes.CDLL(name)  # the copy the sqlite3 module already loaded (same soname)
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return int(library.sqlite3_memory_used())


def process_sample() -> dict[str, int]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_kib": int(status["VmRSS"].split()[0]), "fds": len(os.listdir("/proc/self/fd")),
            "threads": int(status["Threads"])}  # fmt: skip


def jpeg(width: int = 320, height: int = 240) -> bytes:
    """A real JPEG of noise (a few tens of KB, like an edge's snapshot crop)."""
    import cv2
    import numpy as np

    image = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return encoded.tobytes()


# -- the load (its own process, so its memory is not the station's) ------------------------------------------
def run_load(broker_url: str, prefix: str, station: str, password: str, rate: float, stop: Any, counts: Any) -> None:
    """Publish like a busy edge node and read /api/live until `stop` is set; counts[0] events sent, [1] pushed."""
    import httpx
    import paho.mqtt.client as mqtt
    import websockets

    from smarteye.wire import messages as m
    from smarteye.wire import topics

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{NODE}-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(100)
    host, port = broker_url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    picture = jpeg()

    def publish(topic: str, payload: bytes | str, retain: bool = False) -> None:
        client.publish(topic, payload, qos=1, retain=retain)

    def send(message: m.DetectionEvent) -> None:
        publish(topics.events_topic(prefix, NODE, message.stream), message.model_dump_json())

    def event(event_id: str, seq: int, kind: m.EventType, stream: str, track: int, now: float) -> m.DetectionEvent:
        return m.DetectionEvent(
            node=NODE, id=f"{event_id}:{seq}", event_id=event_id, seq=seq, type=kind, stream=stream, track_id=track,
            label="person", class_id=0, score=0.8, top_score=0.9, box=m.Box(x1=10, y1=20, x2=110, y2=220),
            box_norm=m.Box(x1=0.01, y1=0.03, x2=0.09, y2=0.3), frame_width=1280, frame_height=720,
            capture_time=now, pts=now % 1000, first_seen=now, last_seen=now, detect_time=now + 0.02,
            publish_time=now + 0.03, model="yolov8n", end_reason=m.EndReason.GONE if kind is m.EventType.END else None,
            geo=m.GeoPosition(lat=47.39 + random.random() / 1000, lon=8.54, uncertainty_m=3.0, source="mavlink"),
        )  # fmt: skip

    async def read_live() -> None:
        async with httpx.AsyncClient(base_url=station, timeout=60) as http:
            login = await http.post("/api/login", json={"username": USER, "password": password})
            login.raise_for_status()
            cookie = f"smarteye_session={login.cookies['smarteye_session']}"
        url = station.replace("http://", "ws://") + "/api/live"
        async with websockets.connect(url, additional_headers={"Cookie": cookie}, max_size=None) as socket:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(socket.recv(), 0.5)
                    counts[1] += 1
                except TimeoutError:
                    pass

    async def publish_loop() -> None:
        track, started, sent = 0, time.monotonic(), 0
        live: dict[str, tuple[str, int, int]] = {}  # event id -> (stream, track, next seq)
        alert_no = 0
        while not stop.is_set():
            now = time.time()
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                if len(live) < 20:  # a new object: `new` and its snapshot
                    track += 1
                    event_id, stream = uuid.uuid4().hex, STREAMS[track % len(STREAMS)]
                    send(event(event_id, 0, m.EventType.NEW, stream, track, now))
                    publish(topics.snapshot_topic(prefix, NODE, stream, event_id), picture)
                    live[event_id] = (stream, track, 1)
                else:  # an update, or after 10 messages the object's `end`
                    event_id = random.choice(list(live))
                    stream, number, seq = live[event_id]
                    kind = m.EventType.END if seq >= 10 else m.EventType.UPDATE
                    send(event(event_id, seq, kind, stream, number, now))
                    if kind is m.EventType.END:
                        del live[event_id]
                    else:
                        live[event_id] = (stream, number, seq + 1)
                sent += 1
            counts[0] = sent
            second = int(now * 5)
            if second % 5 == 0:  # telemetry at 1 Hz per stream, status every 5 s, an alert every 10 s
                for stream in STREAMS:
                    telemetry = m.Telemetry(node=NODE, stream=stream, source="mavlink", time=now)
                    publish(topics.telemetry_topic(prefix, NODE, stream), telemetry.model_dump_json())
            if second % 25 == 0:
                for stream in STREAMS:
                    status = m.StreamStatus(node=NODE, stream=stream, state=m.SourceState.LIVE, url="rtsp://cam",
                                            source_kind="rtsp", fps=25.0, time=now)  # fmt: skip
                    publish(topics.status_topic(prefix, NODE, stream), status.model_dump_json(), retain=True)
            if second % 50 == 0:
                alert_no += 1
                alert_id = uuid.uuid4().hex
                obj = m.AlertObject(track_id=1, label="person", score=0.8, box=m.Box(x1=1, y1=2, x2=3, y2=4),
                                    box_norm=m.Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4), time_in_zone_s=1.0)  # fmt: skip
                for seq, state in enumerate((m.AlertState.START, m.AlertState.END)):
                    alert = m.Alert(
                        node=NODE, id=f"{alert_id}:{seq}", alert_id=alert_id, seq=seq, state=state, stream="cam1",
                        rule="door", rule_kind=m.RuleKind.ENTER, severity=m.Severity.WARNING, zone="door",
                        objects=[obj], count=1, capture_time=now, start_time=now,
                        end_time=now if state is m.AlertState.END else None, publish_time=now, rules_version=1,
                        snapshot=seq == 0,
                    )  # fmt: skip
                    if seq == 0:
                        publish(topics.alert_snapshot_topic(prefix, NODE, "cam1", alert_id), picture)
                    publish(topics.alerts_topic(prefix, NODE, "cam1"), alert.model_dump_json())
                counts_message = m.ZoneCounts(node=NODE, stream="cam1", zones={"door": alert_no % 5}, lines={},
                                              rules_version=1, time=now)  # fmt: skip
                publish(topics.counts_topic(prefix, NODE, "cam1"), counts_message.model_dump_json())
            await asyncio.sleep(0.2)

    async def main() -> None:
        reader = asyncio.ensure_future(read_live())
        await publish_loop()
        await reader

    try:
        asyncio.run(main())
    finally:
        client.loop_stop()
        client.disconnect()


# -- the station (this process) -------------------------------------------------------------------------------
def top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, limit: int) -> list[dict[str, Any]]:
    """The allocations that grew most, by traceback (the innermost frames inside the project first)."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    stats = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    rows = []
    for stat in stats[:limit]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback]
        ours = [f"{f.filename.removeprefix(str(REPO) + '/')}:{f.lineno}" for f in stat.traceback
                if f.filename.startswith(str(REPO)) and "/.venv/" not in f.filename]  # fmt: skip
        rows.append({"kib_diff": round(stat.size_diff / 1024, 1), "count_diff": stat.count_diff,
                     "kib": round(stat.size / 1024, 1), "where": (ours[-3:] or frames[-3:])})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=50.0, help="event messages per second")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the first tracemalloc snapshot")
    parser.add_argument("--frames", type=int, default=12, help="traceback depth tracemalloc keeps")
    parser.add_argument("--cache-kib", type=int, help="SQLite page cache per connection (PRAGMA cache_size=-N)")
    parser.add_argument("--no-trace", action="store_true", help="RSS only (tracemalloc slows every allocation)")
    parser.add_argument("--json", type=Path, help="write every sample and the top growth here too")
    args = parser.parse_args()

    import secrets

    import sqlalchemy as sa

    from ground_station.auth.roles import Role
    from ground_station.config import GroundStationConfig
    from ground_station.service import GroundStation
    from smarteye.sim.broker import MosquittoBroker
    from smarteye.sim.ports import free_tcp_port

    if not args.no_trace:
        tracemalloc.start(args.frames)
    prefix = "smarteye/v1"
    password = secrets.token_urlsafe(16)
    samples: list[dict[str, Any]] = []
    growth: list[dict[str, Any]] = []
    context = mp.get_context("spawn")
    stop, counts = context.Event(), context.Array("q", 2)
    with tempfile.TemporaryDirectory(prefix="smarteye-mem-") as tmp, MosquittoBroker() as broker:
        config = GroundStationConfig.model_validate({
            "mqtt": {"url": broker.url, "client_id": "mem-station", "topic_prefix": prefix},
            "database_url": f"sqlite:///{tmp}/ground.sqlite",
            "web": {"port": free_tcp_port(), "secure_cookies": False},
        })  # fmt: skip
        station = GroundStation(config)
        if args.cache_kib is not None:

            @sa.event.listens_for(station.store.engine, "connect")
            def _cache(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute(f"PRAGMA cache_size=-{args.cache_kib}")

            station.store.engine.dispose()  # connections opened so far get the setting too
        station.accounts.create_user(USER, password, Role.VIEWER)
        station.start()
        load = context.Process(target=run_load, args=(broker.url, prefix, station.url, password, args.rate, stop,
                                                      counts))  # fmt: skip
        load.start()
        baseline: tracemalloc.Snapshot | None = None
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(max(0.0, args.interval - ((time.monotonic() - started) % args.interval)))
                if not load.is_alive():
                    raise RuntimeError("the load process ended early")
                t = round(time.monotonic() - started, 1)
                traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
                stats = station.aggregator.stats()
                sample = {
                    "t": t, "load_1min": round(os.getloadavg()[0], 2), **process_sample(),
                    "python_kib": None if traced is None else traced // 1024,
                    "sqlite_kib": (sqlite_memory_used() or 0) // 1024,
                    "pool": station.store.engine.pool.status(), "sent": counts[0], "stored": stats.stored,
                    "live_pushed": counts[1], "queue": stats.queue_depth,
                }  # fmt: skip
                samples.append(sample)
                print(f"{t:6.0f} s load {sample['load_1min']:5.2f} | RSS {sample['rss_kib'] / 1024:6.1f} MiB "
                      f"python {(sample['python_kib'] or 0) / 1024:5.1f} MiB sqlite {sample['sqlite_kib'] / 1024:5.1f}"
                      f" MiB | fds {sample['fds']} thr {sample['threads']} | sent {sample['sent']} stored "
                      f"{sample['stored']} pushed {sample['live_pushed']} | {sample['pool']}", flush=True)  # fmt: skip
                if tracemalloc.is_tracing() and baseline is None and t >= args.warmup:
                    baseline = tracemalloc.take_snapshot()
            if baseline is not None:
                growth = top_growth(baseline, tracemalloc.take_snapshot(), 15)
        finally:
            stop.set()
            load.join(30)
            station.stop()
    if growth:
        print("\nPython allocations that grew most after warm-up (KiB, blocks, where):")
        for row in growth:
            print(f"  {row['kib_diff']:+9.1f} KiB {row['count_diff']:+7d}  {' < '.join(reversed(row['where']))}")
    after = [s for s in samples if s["t"] >= args.warmup] or samples
    if after:
        first, last = after[0], samples[-1]
        minutes = max((last["t"] - first["t"]) / 60, 1e-9)
        print(f"\nafter warm-up ({first['t']:.0f} s → {last['t']:.0f} s, {last['stored'] - first['stored']} events "
              f"stored): RSS {first['rss_kib'] / 1024:.1f} → {last['rss_kib'] / 1024:.1f} MiB "
              f"({(last['rss_kib'] - first['rss_kib']) / 1024 / minutes:+.2f} MiB/min), SQLite "
              f"{first['sqlite_kib'] / 1024:.1f} → {last['sqlite_kib'] / 1024:.1f} MiB, fds {first['fds']} → "
              f"{last['fds']}; load (1 min) {min(s['load_1min'] for s in samples)}–"
              f"{max(s['load_1min'] for s in samples)}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "samples": samples,
                                         "growth": growth}, indent=1) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
