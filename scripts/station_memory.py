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

The keeper behind the slow growth once blamed on `parse.py` (`model_validate_json`, ~80 bytes per stored event)
is pydantic-core's string cache: JSON strings of 2-63 bytes are kept process-wide in a cache of 16 384 slots, so
each event's unique `id`/`event_id` stays alive until a later string takes its slot. It is bounded (~1.3-1.4 MiB
of ids; at this load's mix full after ~18 000 events), so it only looks linear while it fills: the 30-min soak
(~10 000 events) had not filled it. Each traced sample prints what parse.py allocated that is still alive (the
cache's content plus messages in flight), which levels off; at the end the load stops, the station stores all it
received, pydantic's cache is flushed (200 000 unique strings parsed) and what parse.py allocated and is still
alive is printed again: near zero when the cache was the only keeper. `--string-cache none` turns the cache off
for the wire models (an A/B: no parse.py growth from the start).

    python3 scripts/station_memory.py --minutes 5 --rate 50
    python3 scripts/station_memory.py --minutes 5 --rate 50 --cache-kib 500   # a smaller SQLite page cache
    python3 scripts/station_memory.py --minutes 2 --rate 30 --string-cache none   # pydantic's string cache off
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


PARSE_PY = str(REPO / "ground_station" / "ingest" / "parse.py")
STRING_CACHE_SLOTS = 16_384  # pydantic-core (jiter) caches JSON strings of 2-63 bytes in this many slots
NO_GROWTH_BYTES_PER_EVENT = 5.0  # below this, the parse.py figure is noise (messages in flight at warm-up)
FLUSH_STRINGS = 200_000  # a slot missed by all of them: (1 - 1/16384) ** 200000 ~ 5e-6


def set_string_cache(mode: str) -> None:
    """Rebuild the wire models with `cache_strings=mode` (an A/B knob for this tool, not the product's setting)."""
    from smarteye.wire.messages import MESSAGE_MODELS

    for model in MESSAGE_MODELS.values():
        model.model_config["cache_strings"] = mode  # type: ignore[typeddict-item]
        model.model_rebuild(force=True)


def flush_string_cache() -> None:
    """Evict every string pydantic-core's cache holds by parsing many unique short strings (it has no clear
    call): what the station's parse still holds afterwards is kept by something else."""
    import pydantic_core

    pydantic_core.from_json(("[" + ",".join(f'"flush-{i:026x}"' for i in range(FLUSH_STRINGS)) + "]").encode())


def live_bytes(snapshot: tracemalloc.Snapshot, path: str, lines: range | None = None) -> int:
    """Bytes still allocated with `path` (and one of `lines`, if given) anywhere in their traceback."""
    # The snapshot's raw tuples (domain, size, ((filename, lineno), ...), frames): an order of magnitude faster
    # than its Trace objects, which matters while the station runs (this holds the GIL).
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is None:
        raw = [(0, trace.size, tuple((f.filename, f.lineno) for f in trace.traceback)) for trace in snapshot.traces]
    return sum(trace[1] for trace in raw
               if any(name == path and (lines is None or line in lines) for name, line in trace[2]))  # fmt: skip


def _lines(function: Any) -> range:
    numbers = [line for *_, line in function.__code__.co_lines() if line is not None]
    return range(min(numbers), max(numbers) + 1)


def levelled_off(samples: list[dict[str, Any]]) -> dict[str, int] | None:
    """Where the samples' parse.py figure reached 95 % of its highest and stayed there for two more samples (the
    string cache full), or None if it was still rising at the end."""
    series = [(s["stored"], s["parse_kib"]) for s in samples if s.get("parse_kib") is not None]
    if not series:
        return None
    top = max(kib for _, kib in series)
    first = next(i for i, (_, kib) in enumerate(series) if kib >= 0.95 * top)
    if len(series) - first < 3 or any(kib < 0.9 * top for _, kib in series[first:]):
        return None
    return {"events": series[first][0], "kib": series[first][1]}


def string_cache_report(baseline: tracemalloc.Snapshot, final: tracemalloc.Snapshot, flushed: tracemalloc.Snapshot,
                        events: int, samples: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """What parse.py's allocations held at warm-up, at the end and after flushing pydantic's string cache."""
    at_warmup, at_end, after_flush = (live_bytes(s, PARSE_PY) for s in (baseline, final, flushed))
    cache_full = live_bytes(flushed, __file__, _lines(flush_string_cache))  # the flush's strings now fill it
    per_event = (at_end - at_warmup) / max(events, 1)
    return {
        "parse_bytes": {"warmup": at_warmup, "end": at_end, "after_flush": after_flush},
        "events_after_warmup": events, "bytes_per_event": round(per_event, 1),
        "bytes_per_event_after_flush": round(after_flush / max(events, 1), 1),  # an upper bound for a keeper
        "string_cache_full_bytes": cache_full,
        "levelled_off": levelled_off(samples),  # {"events": stored by then, "kib": parse.py's figure then}
        "only_string_cache": after_flush * 10 < max(at_end, 1) or after_flush < 16 * 1024,
    }  # fmt: skip


def print_string_cache(report: dict[str, Any]) -> None:
    parse = report["parse_bytes"]
    print(f"\nparse.py (model_validate_json) allocations still alive: {parse['warmup'] / 1024:.1f} KiB at warm-up → "
          f"{parse['end'] / 1024:.1f} KiB at the end ({report['bytes_per_event']:+.1f} bytes per stored event over "
          f"{report['events_after_warmup']} events) → {parse['after_flush'] / 1024:.1f} KiB after flushing pydantic's "
          f"string cache")  # fmt: skip
    if report["bytes_per_event"] < NO_GROWTH_BYTES_PER_EVENT:
        print("  no growth per event: what parse.py allocates does not outlive its message (beyond the cache's hold)")
    elif report["only_string_cache"]:
        level = report["levelled_off"]
        print(f"  not a leak: pydantic-core's string cache kept them ({STRING_CACHE_SLOTS} slots, "
              f"{report['string_cache_full_bytes'] / 1024 / 1024:.2f} MiB when full of 32-character strings); "
              "nothing else holds them")  # fmt: skip
        print(f"  levelled off at {level['kib']} KiB once {level['events']} events were stored" if level else
              "  still filling at the end: run longer (or at a higher --rate) to see it level off")  # fmt: skip
    else:
        print(f"  parse.py allocations survive the flush ({report['bytes_per_event_after_flush']} bytes per event):"
              " something besides pydantic's string cache keeps them (see the table after the flush)")  # fmt: skip


def per_event(first: dict[str, Any], last: dict[str, Any], key: str) -> str:
    """Growth of `key` (KiB) between two samples in bytes per event stored between them."""
    if first[key] is None or last[key] is None or last["stored"] == first["stored"]:
        return "n/a"
    return f"{(last[key] - first[key]) * 1024 / (last['stored'] - first['stored']):+.0f} B"


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
    parser.add_argument("--string-cache", choices=("all", "keys", "none"),
                        help="pydantic's cache_strings for the wire models (default: as they declare it)")  # fmt: skip
    args = parser.parse_args()

    import secrets

    import sqlalchemy as sa

    from ground_station.auth.roles import Role
    from ground_station.config import GroundStationConfig
    from ground_station.service import GroundStation
    from smarteye.sim.broker import MosquittoBroker
    from smarteye.sim.ports import free_tcp_port

    if args.string_cache is not None:
        set_string_cache(args.string_cache)
    if not args.no_trace:
        tracemalloc.start(args.frames)
    prefix = "smarteye/v1"
    password = secrets.token_urlsafe(16)
    samples: list[dict[str, Any]] = []
    growth: list[dict[str, Any]] = []
    growth_flushed: list[dict[str, Any]] = []
    cache: dict[str, Any] | None = None
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
                snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
                stats = station.aggregator.stats()
                sample = {
                    "t": t, "load_1min": round(os.getloadavg()[0], 2), **process_sample(),
                    "python_kib": None if traced is None else traced // 1024,
                    "parse_kib": None,
                    "sqlite_kib": (sqlite_memory_used() or 0) // 1024,
                    "pool": station.store.engine.pool.status(), "sent": counts[0], "stored": stats.stored,
                    "live_pushed": counts[1], "queue": stats.queue_depth,
                }  # fmt: skip
                if snapshot is not None:  # parse.py's allocations still alive: pydantic's string cache, in flight
                    sample["parse_kib"] = live_bytes(snapshot, PARSE_PY) // 1024
                samples.append(sample)
                print(f"{t:6.0f} s load {sample['load_1min']:5.2f} | RSS {sample['rss_kib'] / 1024:6.1f} MiB "
                      + (f"python {sample['python_kib'] / 1024:5.1f} MiB (parse.py {sample['parse_kib']} KiB) "
                         if sample["python_kib"] is not None else "python untraced ") +
                      f"sqlite {sample['sqlite_kib'] / 1024:5.1f} MiB | fds {sample['fds']} thr {sample['threads']} | "
                      f"sent {sample['sent']} stored {sample['stored']} pushed {sample['live_pushed']} | "
                      f"{sample['pool']}", flush=True)  # fmt: skip
                if snapshot is not None and baseline is None and t >= args.warmup:
                    baseline = snapshot
                del snapshot
            stop.set()
            load.join(30)
            station.aggregator.wait_idle(30)  # everything received is stored: nothing is in flight
            if baseline is not None:
                final = tracemalloc.take_snapshot()
                growth = top_growth(baseline, final, 15)
                flush_string_cache()
                flushed = tracemalloc.take_snapshot()
                growth_flushed = top_growth(baseline, flushed, 10)
                events = station.aggregator.stats().stored - next(s["stored"] for s in samples if s["t"] >= args.warmup)
                cache = string_cache_report(baseline, final, flushed, events, samples)
        finally:
            stop.set()
            load.join(30)
            station.stop()
    if growth:
        print("\nPython allocations that grew most after warm-up (KiB, blocks, where):")
        for row in growth:
            print(f"  {row['kib_diff']:+9.1f} KiB {row['count_diff']:+7d}  {' < '.join(reversed(row['where']))}")
    if growth_flushed:
        print("\n… and after flushing pydantic's string cache (the flush's own strings are this script's):")
        for row in growth_flushed:
            print(f"  {row['kib_diff']:+9.1f} KiB {row['count_diff']:+7d}  {' < '.join(reversed(row['where']))}")
    if cache is not None:
        print_string_cache(cache)
    after = [s for s in samples if s["t"] >= args.warmup] or samples
    if after:
        first, last = after[0], samples[-1]
        minutes = max((last["t"] - first["t"]) / 60, 1e-9)
        print(f"\nafter warm-up ({first['t']:.0f} s → {last['t']:.0f} s, {last['stored'] - first['stored']} events "
              f"stored): RSS {first['rss_kib'] / 1024:.1f} → {last['rss_kib'] / 1024:.1f} MiB "
              f"({(last['rss_kib'] - first['rss_kib']) / 1024 / minutes:+.2f} MiB/min), SQLite "
              f"{first['sqlite_kib'] / 1024:.1f} → {last['sqlite_kib'] / 1024:.1f} MiB, python heap "
              f"{per_event(first, last, 'python_kib')} and RSS {per_event(first, last, 'rss_kib')} per stored event, "
              f"fds {first['fds']} → "
              f"{last['fds']}; load (1 min) {min(s['load_1min'] for s in samples)}–"
              f"{max(s['load_1min'] for s in samples)}")  # fmt: skip
        if first["python_kib"] is not None:
            print("  (RSS here includes tracemalloc's own cost and its warm-up snapshot: measure RSS with --no-trace)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "samples": samples,
                                         "growth": growth, "growth_after_flush": growth_flushed,
                                         "string_cache": cache}, indent=1) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
