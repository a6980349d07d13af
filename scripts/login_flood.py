"""Memory and answers of the station under a flood of concurrent wrong logins (issue 12).

Each round runs in a fresh process: the station's web app on a real uvicorn server, with the product's
argon2id parameters (64 MiB per hash), and N clients that each POST a wrong password at once. Sampled: the
process's peak RSS above its idle RSS, the answers (401 checked, 503 refused at once, 429 throttled) and
the wall time. `--hash-slots 40` is the station without the bound (every attempt hashes at once);
the product's default is 2.

    .venv/bin/python scripts/login_flood.py                 # both, 3 rounds each, medians
    .venv/bin/python scripts/login_flood.py --rounds 5 --clients 40
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_round(clients: int, hash_slots: int) -> dict[str, object]:
    import httpx
    import psutil
    import uvicorn

    from ground_station.api.app import create_app
    from ground_station.api.live import LiveHub, TelemetryCache
    from ground_station.auth.accounts import Accounts
    from ground_station.auth.roles import Role
    from ground_station.snapshots import Snapshots
    from ground_station.store.store import Store
    from smarteye.sim.ports import free_tcp_port

    folder = tempfile.mkdtemp()
    store = Store(f"sqlite:///{folder}/gs.sqlite")
    accounts = Accounts(store.engine, max_concurrent_hashes=hash_slots, hash_wait_s=0.5)  # product's argon2id
    accounts.create_user("ada", "correct horse battery", Role.ADMIN)
    app = create_app(store, accounts, Snapshots(store.engine), LiveHub(), TelemetryCache())
    port = free_tcp_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    process = psutil.Process()
    idle = process.memory_info().rss
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    url = f"http://127.0.0.1:{port}/api/login"

    def attempt(i: int) -> int:
        body = {"username": f"guess{i}", "password": "wrong password!"}
        return httpx.post(url, json=body, timeout=120).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(attempt, range(clients)))
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    server.should_exit = True
    return {
        "hash_slots": hash_slots,
        "clients": clients,
        "idle_rss_mib": idle / 2**20,
        "peak_growth_mib": (peak - idle) / 2**20,
        "seconds": elapsed,
        "answers": dict(collections.Counter(statuses)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hash-slots", type=int, action="append", help="default: 40 (unbounded) and 2")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process: one round
    args = parser.parse_args()
    slots = args.hash_slots or [40, 2]
    if args.one:
        print(json.dumps(one_round(args.clients, slots[0])))
        return
    for hash_slots in slots:
        rounds = []
        for _ in range(args.rounds):
            child = subprocess.run(
                [sys.executable, __file__, "--one", "--clients", str(args.clients), "--hash-slots", str(hash_slots)],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )  # fmt: skip
            rounds.append(json.loads(child.stdout.strip().splitlines()[-1]))
        growth = statistics.median(r["peak_growth_mib"] for r in rounds)
        seconds = statistics.median(r["seconds"] for r in rounds)
        print(
            f"hash slots {hash_slots:>3}, {args.clients} concurrent wrong logins: peak RSS growth {growth:7.1f} MiB, "
            f"all answered in {seconds:5.2f} s (medians of {args.rounds}); answers of the last round: "
            f"{rounds[-1]['answers']}; idle RSS {rounds[-1]['idle_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
