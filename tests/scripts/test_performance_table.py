"""The README's performance table is what the benchmark scripts' JSON results give: no figure typed by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_rendered_from_the_benchmark_results() -> None:
    run = subprocess.run([sys.executable, "scripts/performance_table.py", "render", "--check"], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
