"""Ingest benchmark: how many events per second reach the ground station's store, with zero loss.

One run publishes N DetectionEvents (QoS 1, as fast as paho can) to a private Mosquitto from a
separate process, once per target and round, and measures from the start of publishing until the
last event has arrived:

* raw     – a plain paho subscriber (MQTT 5, QoS 1) that only counts: the ceiling set by MQTT itself;
* sqlite  – the Aggregator into a fresh SQLite file;
* postgresql – the Aggregator into a fresh schema of a PostgreSQL database (skipped if unreachable).

Loss = published − stored, which must be 0.  Medians over --rounds.  The target is
--target events/s (default 10,000, the ground station's requirement) with zero loss for every
aggregator target (sqlite, postgresql); raw is reported for comparison only.  The summary says
PASS or FAIL per target and the exit status is 0 only if every aggregator target passed.  The broker allows an unlimited
queue per client (`max_queued_messages 0`): with Mosquitto's default of 1000 a subscriber that falls
behind a publisher by more than its in-flight window + 1000 messages loses the rest, which is the
broker's doing, not the aggregator's (a production broker for the ground station needs the same).

    python3 scripts/benchmark_ingest.py                       # 50,000 events, 3 rounds
    python3 scripts/benchmark_ingest.py --events 5000 --rounds 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from smarteye.sim.broker import MosquittoBroker  # noqa: E402
from smarteye.sim.postgres import postgres_schema  # noqa: E402
from smarteye.wire.messages import Box, DetectionEvent, EndReason, EventType  # noqa: E402
from smarteye.wire.topics import ANY, events_topic  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_RATE = 10_000  # events/s the aggregator must store with zero loss
LABELS = ("person", "car", "truck", "bicycle", "dog")


class UnlimitedQueueBroker(MosquittoBroker):
    """MosquittoBroker whose per-client queue is unbounded (see module docstring)."""

    def _write_config(self, workdir: Path) -> Path:
        conf = super()._write_config(workdir)
        with conf.open("a", encoding="utf-8") as handle:
            handle.write("max_queued_messages 0\n")
        return conf


def make_payloads(count: int, node: str = "bench", streams: int = 4) -> list[bytes]:
    """Realistic event messages: objects of 5 messages each (new, 3 updates, end) across streams."""
    payloads = []
    base = time.time()
    run = uuid.uuid4().hex[:12]
    for i in range(count):
        obj, seq = divmod(i, 5)
        event_id = f"{run}-{obj:08d}"
        t = base + i * 0.001
        kind = EventType.NEW if seq == 0 else EventType.END if seq == 4 else EventType.UPDATE
        payloads.append(
            DetectionEvent(
                node=node,
                id=f"{event_id}:{seq}",
                event_id=event_id,
                seq=seq,
                type=kind,
                stream=f"cam{obj % streams}",
                track_id=obj,
                label=LABELS[obj % len(LABELS)],
                class_id=obj % len(LABELS),
                score=0.4 + (i % 60) / 100,
                top_score=0.99,
                box=Box(x1=100.5, y1=200.25, x2=180.0, y2=390.75),
                box_norm=Box(x1=0.0523, y1=0.1854, x2=0.0938, y2=0.3618),
                frame_width=1920,
                frame_height=1080,
                capture_time=t,
                pts=i / 25,
                first_seen=t,
                last_seen=t,
                detect_time=t + 0.02,
                publish_time=t + 0.021,
                model="yolov8n",
                end_reason=EndReason.GONE if seq == 4 else None,
            )
            .model_dump_json()
            .encode()
        )
    return payloads


def _encode_length(length: int) -> bytes:
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """An MQTT 3.1.1 PUBLISH at QoS 1."""
    body = len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + _encode_length(len(body)) + body


def _publisher(host: str, port: int, topic_prefix: str, count: int, ready: Any, go: Any, result: Any) -> None:
    """Child process: pre-encode every PUBLISH (untimed), then stream them at QoS 1 and wait for all PUBACKs.

    A minimal MQTT 3.1.1 client on a raw socket, because paho's publish() tops out at ~7,000
    messages/s here, which would measure the publisher instead of the receivers; this one stands
    in for many edge nodes publishing at once.  At most WINDOW messages are unacknowledged.
    """
    window = 2000
    packets = []
    for i, payload in enumerate(make_payloads(count)):
        topic = events_topic(topic_prefix, "bench", f"cam{(i // 5) % 4}").encode()
        packets.append(_publish_packet(topic, i % 65535 + 1, payload))
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"bench-pub-{uuid.uuid4().hex[:6]}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(b"\x10" + _encode_length(len(variable)) + variable)
    if sock.recv(4) != b"\x20\x02\x00\x00":
        raise RuntimeError("broker refused the benchmark publisher")
    acked = [0]
    cond = threading.Condition()

    def read_acks() -> None:
        buffer = b""
        while acked[0] < count:
            data = sock.recv(65536)
            if not data:
                return
            buffer += data
            whole = len(buffer) // 4  # every packet we get is a 4-byte PUBACK
            buffer = buffer[whole * 4 :]
            with cond:
                acked[0] += whole
                cond.notify_all()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    ready.set()
    go.wait()
    start = time.monotonic()
    chunk = 100
    for first in range(0, count, chunk):
        with cond:
            cond.wait_for(lambda first=first: first - acked[0] < window, timeout=60)
        sock.sendall(b"".join(packets[first : first + chunk]))
    reader.join(600)
    result.put(time.monotonic() - start)
    sock.sendall(b"\xe0\x00")
    sock.close()


class Publisher:
    """Runs _publisher in a spawned process (its own interpreter: no GIL shared with the receiver)."""

    def __init__(self, broker: MosquittoBroker, topic_prefix: str, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.go, self.result = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(
            target=_publisher,
            args=(broker.host, broker.port, topic_prefix, count, self.ready, self.go, self.result),
            daemon=True,
        )
        self.process.start()
        if not self.ready.wait(300):
            raise RuntimeError("publisher process did not get ready")

    def start(self) -> float:
        started = time.monotonic()
        self.go.set()
        return started

    def finish(self) -> float:
        duration = float(self.result.get(timeout=600))
        self.process.join(10)
        return duration


def _v5_properties(receive_maximum: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    props.ReceiveMaximum = receive_maximum
    return props


def run_raw(broker: MosquittoBroker, count: int, receive_maximum: int) -> dict[str, Any]:
    """A counting subscriber with the aggregator's MQTT settings (v5, QoS 1, same receive maximum)."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}/v1"
    finished = threading.Event()
    state = {"n": 0, "last": 0.0}

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        state["n"] += 1
        if state["n"] == count:
            state["last"] = time.monotonic()
            finished.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{uuid.uuid4().hex[:6]}", protocol=5)
    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_connect = lambda c, *args: c.subscribe(events_topic(prefix, ANY, ANY), qos=1)
    sub.connect(broker.host, broker.port, properties=_v5_properties(receive_maximum))
    sub.loop_start()
    subscribed.wait(10)
    publisher = Publisher(broker, prefix, count)
    start = publisher.start()
    publish_s = publisher.finish()
    finished.wait(120)
    sub.loop_stop()
    sub.disconnect()
    elapsed = state["last"] - start if finished.is_set() else float("nan")
    return {
        "received": state["n"],
        "lost": count - state["n"],
        "elapsed_s": elapsed,
        "rate": count / elapsed,
        "publish_rate": count / publish_s,
    }


def run_aggregator(
    broker: MosquittoBroker, count: int, database_url: str, batch_size: int, queue_max: int
) -> dict[str, Any]:
    from ground_station.config import GroundStationConfig
    from ground_station.ingest import Aggregator

    prefix = f"bench-{uuid.uuid4().hex[:6]}/v1"
    config = GroundStationConfig(
        mqtt={"url": broker.url, "client_id": f"bench-agg-{uuid.uuid4().hex[:6]}", "topic_prefix": prefix},
        database_url=database_url,
        batch_size=batch_size,
        queue_max=queue_max,
        session_expiry_s=0,
    )
    aggregator = Aggregator(config)
    aggregator.start()
    deadline = time.monotonic() + 10
    while not aggregator.stats().connected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let SUBACK arrive
    publisher = Publisher(broker, prefix, count)
    start = publisher.start()
    done_at = float("nan")
    last_progress, last_stored = time.monotonic(), -1
    while True:
        stored = aggregator.stats().stored
        now = time.monotonic()
        if stored >= count:
            done_at = now
            break
        if stored != last_stored:
            last_progress, last_stored = now, stored
        elif now - last_progress > 15:  # nothing new for 15 s: something was lost
            break
        time.sleep(0.005)
    publish_s = publisher.finish()
    aggregator.wait_idle(10)
    stats = aggregator.stats()
    stored_rows = aggregator.store.count_events()
    aggregator.stop()
    elapsed = done_at - start
    return {
        "stored": stored_rows,
        "lost": count - stored_rows,
        "duplicates": stats.duplicates,
        "malformed": stats.malformed_total,
        "batches": stats.batches,
        "mean_batch": round(stats.received / max(stats.batches, 1), 1),
        "elapsed_s": elapsed,
        "rate": count / elapsed,
        "publish_rate": count / publish_s,
    }


def _postgres_reachable(url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except Exception as error:
        print(f"PostgreSQL skipped ({url}): {str(error).splitlines()[0]}", file=sys.stderr)
        return False
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events published per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target (median reported)")
    parser.add_argument("--pg-url", default=os.environ.get("SMARTEYE_BENCH_PG", DEFAULT_PG_URL))
    parser.add_argument("--targets", default="raw,sqlite,postgresql", help="comma-separated subset")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--queue-max", type=int, default=20_000)
    parser.add_argument("--target", type=float, default=TARGET_RATE, help="required median events/s (aggregator)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    receive_maximum = min(args.queue_max, 65535)

    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
    pg_ok = "postgresql" not in targets or _postgres_reachable(args.pg_url)
    with UnlimitedQueueBroker() as broker, tempfile.TemporaryDirectory(prefix="smarteye-bench-") as tmp:
        for round_no in range(1, args.rounds + 1):
            for target in targets:
                if target == "raw":
                    result = run_raw(broker, args.events, receive_maximum)
                elif target == "sqlite":
                    url = f"sqlite:///{tmp}/round{round_no}.sqlite"
                    result = run_aggregator(broker, args.events, url, args.batch_size, args.queue_max)
                elif target == "postgresql":
                    if not pg_ok:
                        continue
                    with postgres_schema(args.pg_url) as url:
                        result = run_aggregator(broker, args.events, url, args.batch_size, args.queue_max)
                else:
                    parser.error(f"unknown target {target!r}")
                runs[target].append(result)
                print(
                    f"round {round_no} {target:<10} {result['rate']:>9,.0f} events/s  "
                    f"lost {result['lost']}  (publisher {result['publish_rate']:,.0f}/s)",
                    flush=True,
                )

    summary: dict[str, Any] = {
        "events": args.events,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "target_rate": args.target,
        "targets": {},
    }
    print(f"\ntarget: ≥ {args.target:,.0f} events/s stored (median) with 0 lost")
    print(f"{'target':<11}{'median events/s':>16}{'min':>10}{'max':>10}{'lost':>6}{'÷raw':>7}  result")
    # The same run's plain-subscriber rate: a reference that moves with the machine's load.
    raw_median = statistics.median(r["rate"] for r in runs["raw"]) if runs.get("raw") else None
    ok = True
    for target, results in runs.items():
        if not results:
            continue
        rates = [r["rate"] for r in results]
        median = statistics.median(rates)  # NaN (never finished) fails the comparison below
        ratio = median / raw_median if raw_median else None
        lost = max(r["lost"] for r in results)
        if target == "raw":
            verdict = "(reference)" if lost == 0 else "LOSS (reference)"
            passed = None
        else:
            passed = lost == 0 and median >= args.target
            verdict = "PASS" if passed else "FAIL" + (f" (lost {lost})" if lost else " (too slow)")
            ok = ok and passed
        summary["targets"][target] = {
            "median_rate": median,
            "ratio_to_raw": ratio,
            "max_lost": lost,
            "passed": passed,
            "runs": results,
        }
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        print(f"{target:<11}{median:>16,.0f}{min(rates):>10,.0f}{max(rates):>10,.0f}{lost:>6}{shown:>7}  {verdict}")
    summary["passed"] = ok
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
