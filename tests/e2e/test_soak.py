"""The soak script as CI runs it: 2 minutes of the whole system (two sources, events, two viewers).

The 30-minute run is `python3 scripts/soak.py`; its figures go in docs/reliability.md. Here the same
script runs for 2 minutes and its samples are checked: nothing that should be flat grows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_two_minutes_of_two_sources_and_two_viewers_leak_no_descriptors_threads_or_memory(
    media, model_path, tmp_path: Path
) -> None:
    media("vtest.avi"), media("intel_one-by-one-person-detection.mp4")  # skip cleanly without the assets
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "soak.py"), "--minutes", "2", "--warmup", "45", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=420,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    samples, growth = report["samples"], report["growth"]
    assert len(samples) >= 11 and growth["events"] > 100, growth
    after_warmup = [s for s in samples if s["t"] >= 45]
    for sample in after_warmup:
        assert sample["events"] > 0, sample
        assert min(sample["viewer_fps"]) > 1.0, sample  # both viewers kept receiving video
    for name in ("edge", "station"):
        fds = [s[name]["fds"] for s in after_warmup]
        threads = [s[name]["threads"] for s in after_warmup]
        assert max(fds) - min(fds) <= 2, (name, fds)
        assert max(threads) - min(threads) <= 1, (name, threads)
        assert growth[name]["rss_growth_pct"] < 5.0, (name, growth[name])
    assert growth["latency_p99_ms_median"] < 2000, growth
