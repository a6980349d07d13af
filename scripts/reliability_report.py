"""Reliability report: runs the fault scenarios (real processes: Mosquitto, PostgreSQL, RTSP servers, the
edge and the station), collects the figure each prints (`FIGURE <scenario> <JSON>`) and regenerates
docs/reliability.md with them, the verdict of each test and the conditions of the run.

    python3 scripts/reliability_report.py                  # every scenario, writes docs/reliability.md
    python3 scripts/reliability_report.py --only sigterm   # one scenario, printed, nothing written
    python3 scripts/reliability_report.py --output /tmp/r.md

A scenario whose test is skipped (no mosquitto, no PostgreSQL binaries, no right to mount a tmpfs) is
reported as skipped with pytest's reason, never as passed.  The machine's load is recorded: the figures
are wall-clock times and move with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"FIGURE (\S+) (\{.*\})\s*$", re.M)  # pytest -s may print a dot before it
OUTCOME = re.compile(r"\b(\d+) (passed|failed|skipped|error|errors)\b")
SKIP_REASON = re.compile(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)")


@dataclass(frozen=True)
class Scenario:
    name: str
    test: str  # pytest node id, relative to the project
    fault: str
    acceptance: str


SCENARIOS = [
    Scenario("rtsp_restarts", "tests/e2e/test_rtsp_restarts.py",
             "an RTSP camera killed and restarted 10 times, a second camera untouched",
             "each restart recovered; the other stream's event rate unchanged"),
    Scenario("broker_kill_burst", "tests/e2e/test_fault_broker_kill.py",
             "Mosquitto SIGKILLed in the middle of a burst of 3000 events, restarted after 1 s",
             "events lost: 0, no duplicates, counted by id from the edge's publisher to the station's store"),
    Scenario("postgres_outage", "tests/e2e/test_fault_postgres_outage.py",
             "the station's PostgreSQL stopped for 20 s while a node sends 50 events/s",
             "events lost: 0, no duplicates, counted by id"),
    Scenario("spool_disk_full", "tests/edge/outputs/test_spool_disk_full.py",
             "the edge's spool on a 1 MiB tmpfs filled to ENOSPC while 300 events are published, then room given back",
             "the real error logged once, counted; nothing lost once there is room"),
    Scenario("sigterm", "tests/e2e/test_sigterm.py",
             "SIGTERM to `smarteye edge` and `smarteye ground-station run` (uplink and a live socket open)",
             "both exit within 5 s, spool kept, retained status `stopped`, availability `offline`"),
]  # fmt: skip


@dataclass
class Result:
    scenario: Scenario
    outcome: str = "not run"
    seconds: float = 0.0
    figures: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


def run(scenario: Scenario) -> Result:
    result = Result(scenario)
    if not (ROOT / scenario.test.split("::")[0]).exists():
        result.outcome, result.detail = "missing", f"{scenario.test} does not exist"
        return result
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-rs", "-p", "no:cacheprovider", scenario.test],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    result.seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    result.figures = [{"scenario": name, **json.loads(values)} for name, values in FIGURE.findall(output)]
    counts = {kind: int(n) for n, kind in OUTCOME.findall(output.splitlines()[-1] if output else "")}
    if counts.get("failed") or counts.get("error") or counts.get("errors") or done.returncode not in (0, 5):
        result.outcome = "FAILED"
        errors = [" ".join(line[1:].split()) for line in output.splitlines() if line.startswith("E ")]
        result.detail = " / ".join(errors[:2])[:240]
    elif counts.get("passed"):
        result.outcome = "passed" + (f" ({counts['skipped']} skipped)" if counts.get("skipped") else "")
    else:
        result.outcome = "skipped"
        result.detail = "; ".join(SKIP_REASON.findall(output))[:300]
    return result


def conditions() -> dict[str, str]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "?",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "load": load,
    }


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def render(results: list[Result], context: dict[str, str]) -> str:
    lines = [
        "# Reliability",
        "",
        "Faults injected into real processes (Mosquitto, PostgreSQL, GStreamer RTSP servers, `smarteye edge`,",
        "`smarteye ground-station run`), each an automated test that fails when its acceptance is not met.",
        "Regenerate this page with `python3 scripts/reliability_report.py` (the figures are wall-clock",
        "times: they move with the machine's load, recorded below).",
        "",
        f"Run: {context['date']}, commit `{context['commit']}`, {context['machine']}, "
        f"load average at start {context['load']}.",
        "",
        "| fault | acceptance | test | result | figures |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        figures = "<br>".join(
            ", ".join(f"{k} {_value(v)}" for k, v in sorted(f.items()) if k != "scenario") for f in r.figures
        )
        outcome = r.outcome + (f": {r.detail}" if r.detail and r.outcome != "passed" else "")
        test = f"`{r.scenario.test}`"
        lines.append(f"| {r.scenario.fault} | {r.scenario.acceptance} | {test} | {outcome} ({r.seconds:.0f} s) | "
                     f"{figures or '—'} |")  # fmt: skip
    lines += [
        "",
        "## What holds, and where it is tested",
        "",
        "- **No message can poison the ingest.** Only a store outage (connection lost or refused, disk full,",
        "  database locked) is retried; every other failure of a message (the database refuses its data, an",
        "  integer SQLite cannot hold raises OverflowError, a lone surrogate cannot be encoded, …) is isolated",
        "  by writing the batch again row by row, counted by reason (`smarteye_messages_malformed_total`) and",
        "  skipped, never retried. `tests/ground_station/ingest/test_poison.py` (a hypothesis property: valid",
        "  messages are stored around arbitrary payloads: extreme values, wrong types, huge strings, invalid UTF-8).",
        "- **Identity comes from the topic** (the broker's ACL pins each node to its own topics):",
        "  [broker-security.md](broker-security.md).",
        "- **The spool survives a full disk.** The real error is logged once and counted",
        "  (`smarteye_edge_spool_disk_full`); what cannot be written is held in memory (up to",
        "  `spool_max_messages`) and written in order once there is room; only a corrupt file is set aside.",
        "- **A broker crash loses nothing.** The broker's PUBACK only marks a spooled event sent; the node deletes it",
        "  when the station confirms it stored it (digests on `<prefix>/<node>/stored`) and sends again what is",
        "  unconfirmed after every reconnect: [mqtt.md](mqtt.md#storage-confirmations). Without them the broker-kill",
        "  test loses what the broker held in memory (101 of 3000 in one quiet run).",
        "- **A clean stop says so.** Every stream's retained status becomes `stopped` and the node `offline`,",
        "  even when a source hangs (`tests/edge/test_node_stop.py`).",
        "",
        "Figures: `lost` = published minus stored ids, `duplicates` = ids stored twice, `*_s` = seconds",
        "(`all_stored_after_restart_s`: from the broker's or database's return until the last event was stored;",
        "`edge_exit_s`/`station_exit_s`: from SIGTERM until the process exited).  The 30-minute soak",
        "(`scripts/soak.py`) reports memory, descriptors (naming what a step in them opened) and threads over time",
        "separately; `scripts/station_memory.py` shows what the station's heap keeps per stored event.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=[s.name for s in SCENARIOS], help="run only these")
    parser.add_argument("--output", type=Path, default=None, help="where to write (default docs/reliability.md)")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    context = conditions()
    results = []
    for scenario in chosen:
        print(f"running {scenario.name} ({scenario.test}) …", flush=True)
        result = run(scenario)
        results.append(result)
        print(f"  {result.outcome} in {result.seconds:.0f} s", flush=True)
        for figure in result.figures:
            print(f"  FIGURE {json.dumps(figure, sort_keys=True)}", flush=True)
        if result.detail and result.outcome != "passed":
            print(f"  {result.detail}", flush=True)
    page = render(results, context)
    output = args.output or (None if args.only else ROOT / "docs" / "reliability.md")
    if output is not None:
        output.write_text(page, encoding="utf-8")
        print(f"wrote {output}")
    else:
        print(page)
    return 0 if all(r.outcome.startswith(("passed", "skipped")) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
