"""The README's performance table, written from the benchmark scripts' own results: no figure is typed by hand.

Each benchmark writes its results as JSON (`--json`) into docs/benchmarks/; this script runs them (`run`) and
renders the table between the README's `<!-- performance:begin -->` and `<!-- performance:end -->` markers
(`render`) from those files alone. `--check` exits 1 when the README's table is not what the files give
(a test runs it, so a hand edit of a figure fails CI).

    python3 scripts/performance_table.py run              # every benchmark (~20 min on 2 cores), then render
    python3 scripts/performance_table.py run pipeline     # one benchmark, then render
    python3 scripts/performance_table.py render [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "benchmarks"
README = REPO / "README.md"
BEGIN, END = "<!-- performance:begin -->", "<!-- performance:end -->"


def _f(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pipeline(d: dict[str, Any]) -> str:
    m = d["median"]
    bare = ", ".join(f"{name} {fps:.1f}" for name, fps in sorted(m["bare_fps_by_backend"].items(), key=lambda x: -x[1]))
    naive = f"; naive `model.track` loop ÷ bare **{_f(m.get('naive_ratio'), 3)}**" if "naive_ratio" in m else ""
    start = f"; timed from the node's start instead: {_f(m['ratio_from_start'], 3)}" if "ratio_from_start" in m else ""
    if "ratio_to_parallel" in m:
        workers = d["rounds"][0]["detection_workers"]
        start += (f"; ÷ the runtime alone with the node's {workers} parallel infer requests "
                  f"({_f(m['bare_parallel_fps'], 1)} fps): {_f(m['ratio_to_parallel'], 3)}")  # fmt: skip
    return (f"{d['model']} at {d['imgsz']} on {d['video']}, {len(d['rounds'])} rounds × {d['frames']} frames. Bare fps "
            f"per runtime: {bare}; `auto` picks **{d['auto_backend']}** (fastest here: {d['fastest_backend']}). "
            f"Pipeline (decode, YOLO, tracking, rules, events, MQTT, live video) on it {_f(m['pipeline_fps'], 1)} fps, "
            f"÷ bare **{_f(m['ratio'], 3)}** (target ≥ 0.9; both timed in steady state, after {d.get('skip', 0)} "
            f"frames{start}){naive}.")  # fmt: skip


def _streams(d: dict[str, Any]) -> str:
    before, after = d["phases"][0], d["phases"][1]
    by_stream = ", ".join(f"{name} (priority {s.get('priority', '?')}) {_f(s.get('detection_fps'))}"
                          for name, s in before["streams"].items())  # fmt: skip
    lat, lat_after = before["event_latency_s"], after["event_latency_s"]
    change = d.get("survivor_fps_after_over_before", {})
    load = f", machine load {before['load_1min_median']} on 2 cores" if "load_1min_median" in before else ""
    return (f"4 cameras over RTSP, one detector, {_f(before['seconds'] / 60, 1)} + {_f(after['seconds'] / 60, 1)} min. "
            f"Total detection ÷ bare model {_f(before['ratio_to_bare'])}; per stream fps: {by_stream}; "
            f"capture → MQTT p50/p95/p99 {_f(lat.get('p50'))}/{_f(lat.get('p95'))}/{_f(lat.get('p99'))} s "
            f"(after the kill {_f(lat_after.get('p50'))}/{_f(lat_after.get('p95'))}/{_f(lat_after.get('p99'))} s); "
            f"node CPU {_f(before['cpu_node_pct'], 0)} %, RSS {_f(before['rss_mb'], 0)} MB{load}. "
            f"One camera killed: the others' fps after ÷ before "
            f"{', '.join(f'{k} {v:.2f}' for k, v in change.items()) or '—'}.")  # fmt: skip


def _viewers(d: dict[str, Any]) -> str:
    rounds = d["rounds"]
    one = [r for r in rounds if r["viewers"] == 1]
    many = [r for r in rounds if r["viewers"] != 1]
    med = lambda rows, key: statistics.median(r[key] for r in rows if r.get(key) is not None)  # noqa: E731
    return (f"Edge + station CPU s/s, 1 vs {many[0]['viewers']} WHEP viewers: {_f(med(one, 'total_cpu'), 3)} vs "
            f"{_f(med(many, 'total_cpu'), 3)}, ratio **{_f(d['ratio'], 3)}** (target ≤ 1.1: {d['verdict']}). Camera "
            f"{_f(med(one, 'source_fps'), 1)} fps, encoded {_f(med(one, 'encoded_fps'), 1)} fps; edge CPU per stream "
            f"at full rate {_f(med(one, 'edge_cpu_per_stream'), 3)} (1 viewer), "
            f"{_f(med(many, 'edge_cpu_per_stream'), 3)} ({many[0]['viewers']} viewers).")  # fmt: skip


def _aerial(d: dict[str, Any]) -> str:
    rows = "; ".join(f"{s['mode']}: recall **{s['recall']:.3f}**, precision "
                     f"{_f(s['precision'], 2) if s['predictions'] else '—'}" for s in d["scores"])  # fmt: skip
    skipped = "; ".join(f"{k}: not run ({v})" for k, v in d.get("skipped", {}).items())
    labels = d["scores"][0]["labels"] if d["scores"] else 0
    return f"{labels} labelled vehicles on the 4K nadir frames. {rows}.{' ' + skipped + '.' if skipped else ''}"


def _ingest(d: dict[str, Any]) -> str:
    parts = [f"{name} {t['median_rate']:,.0f}/s (÷ raw MQTT {_f(t.get('ratio_to_raw'))}, lost {t['max_lost']})"
             for name, t in d["targets"].items()]  # fmt: skip
    return "Stored events/s, median: " + "; ".join(parts) + "."


def _alerts(d: dict[str, Any]) -> str:
    final = d.get("final") or {}
    delivered = final.get("delivered", "?")
    return (
        f"Edge fps with the webhook receiver down ÷ up: **{_f(d['ratio'], 3)}** (target ≥ 0.95); every alert "
        f"delivered signed afterwards: {delivered} of {final.get('published', '?')}."
    )


def _geolocation(d: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['file']}: centre median **{r['centre_median_m']} m** ({r['packets']} packets, "
                     f"~{r['median_range_m']:.0f} m slant range)" for r in d) + "."  # fmt: skip


def _soak(d: dict[str, Any]) -> str:
    g = d["growth"]
    e, s = g["edge"], g["station"]
    return (
        f"{g['to_s'] / 60:.0f} min, two sources, two viewers: after warm-up RSS edge {e['rss_growth_pct']:+.2f} %, "
        f"station {s['rss_growth_pct']:+.2f} % (target < 5 %); fds {e['fds'][0]}→{e['fds'][1]} / "
        f"{s['fds'][0]}→{s['fds'][1]}; threads {e['threads'][0]}→{e['threads'][1]} / {s['threads'][0]}→"
        f"{s['threads'][1]}; p99 capture → MQTT {g['latency_p99_ms_median']} ms"
        + (f" (machine load {_f(g['load_1min_median'])} on 2 cores)." if g.get("load_1min_median") is not None else ".")
    )


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    what: str
    command: tuple[str, ...]
    summary: Callable[[Any], str]


BENCHMARKS = (
    Benchmark("pipeline", "Runtimes and the edge pipeline vs the bare model",
              ("scripts/benchmark_pipeline.py", "--rounds", "5"), _pipeline),
    Benchmark("streams", "4 streams sharing the detector",
              ("scripts/benchmark_streams.py", "--minutes", "10"), _streams),
    Benchmark("viewers", "Live video at the camera's rate, 1 vs 10 viewers",
              ("scripts/benchmark_live_viewers.py", "--rounds", "2", "--window", "10"), _viewers),
    Benchmark("viewers_page", "Live video, a 29.97 fps H.264 camera forwarded (boxes drawn by the page)",
              ("scripts/benchmark_live_viewers.py", "--rtsp", "--video", "gopro_karma.mp4", "--boxes", "page",
               "--rounds", "2", "--window", "10"), _viewers),
    Benchmark("viewers_burn_in", "Live video, the same camera encoded with the boxes burned in",
              ("scripts/benchmark_live_viewers.py", "--rtsp", "--video", "gopro_karma.mp4", "--boxes", "burn_in",
               "--rounds", "2", "--window", "10"), _viewers),
    Benchmark("aerial", "Detection from the air", ("scripts/aerial_accuracy.py",), _aerial),
    Benchmark("geolocation", "Geolocation on real drone KLV", ("scripts/geolocation_accuracy.py",), _geolocation),
    Benchmark("ingest", "Ground-station ingest", ("scripts/benchmark_ingest.py", "--events", "20000"), _ingest),
    Benchmark("alerts", "Webhooks: receiver down vs up", ("scripts/benchmark_alerts.py",), _alerts),
    Benchmark("soak", "Soak", ("scripts/soak.py", "--minutes", "30", "--warmup", "120"), _soak),
)  # fmt: skip


def render() -> str:
    lines = [BEGIN, "", "| what | script | result |", "|---|---|---|"]
    for bench in BENCHMARKS:
        path = RESULTS / f"{bench.name}.json"
        script = f"`{' '.join(bench.command)}`"
        if not path.exists():
            lines.append(f"| {bench.what} | {script} | not measured yet: `python3 scripts/performance_table.py run "
                         f"{bench.name}` |")  # fmt: skip
            continue
        data = json.loads(path.read_text())
        stamp = ", ".join(filter(None, (data.get("_measured"), data.get("_host")))) if isinstance(data, dict) else ""
        lines.append(f"| {bench.what} | {script} | {bench.summary(data)}{f' ({stamp})' if stamp else ''} |")
    lines += ["", "Regenerate: `python3 scripts/performance_table.py run [name]`; each row is written from "
              "`docs/benchmarks/<name>.json`.", END]  # fmt: skip
    return "\n".join(lines)


def write_readme(check: bool = False) -> int:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} … {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + render() + tail
    if check:
        if new != text:
            print("README.md's performance table is not what docs/benchmarks/*.json give: run "
                  "`python3 scripts/performance_table.py render`", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    README.write_text(new)
    return 0


def host() -> str:
    """The CPU the figures were measured on: timings from two hosts do not compare, so each row names its own."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} vCPUs"


def run(names: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = []
    for bench in BENCHMARKS:
        if names and bench.name not in names:
            continue
        out = RESULTS / f"{bench.name}.json"
        print(f"== {bench.name}: {' '.join(bench.command)}", flush=True)
        code = subprocess.run([sys.executable, *bench.command, "--json", str(out)], cwd=REPO).returncode
        if out.exists():
            data = json.loads(out.read_text())
            if isinstance(data, dict):
                data["_measured"] = time.strftime("%Y-%m-%d")
                data["_host"] = host()
                out.write_text(json.dumps(data, indent=2) + "\n")
        if code != 0:
            failed.append(f"{bench.name} (exit {code})")
    write_readme()
    if failed:
        print("failed or missed its target: " + ", ".join(failed))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run benchmarks (all, or the named ones), then render")
    run_parser.add_argument("names", nargs="*", help=f"any of {', '.join(b.name for b in BENCHMARKS)}")
    render_parser = sub.add_parser("render", help="write the README's table from docs/benchmarks/*.json")
    render_parser.add_argument("--check", action="store_true", help="exit 1 if the README differs")
    args = parser.parse_args()
    if args.command == "run":
        unknown = set(args.names) - {b.name for b in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        return run(args.names)
    return write_readme(check=args.check)


if __name__ == "__main__":
    sys.exit(main())
