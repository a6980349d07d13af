"""`smarteye models bench|export` as a user runs them: a row per runtime with real timings, the export's path."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from edge.detect.export import entry_dir
from tests.support.edge_process import smarteye_command

# Whole-component: the real CLI in its own process loads, exports and times the model on every runtime (a minute).
pytestmark = pytest.mark.e2e


def _smarteye(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*smarteye_command(), "models", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )


def test_bench_prints_a_row_per_backend(model_path, media) -> None:
    media("vtest.avi")  # skip without the shared assets, like the other model tests
    result = _smarteye("bench", str(model_path), "--frames", "4", "--rounds", "2")
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        found = re.match(r"(torch|openvino|onnx)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d. ]+?)(\s+<- auto)?$", line)
        if found:
            rows[found[1]] = found
    assert set(rows) == {"torch", "openvino", "onnx"}, result.stdout
    for row in rows.values():
        ms, fps = float(row[2]), float(row[3])
        assert ms > 0 and abs(fps - 1000 / ms) < 0.2  # fps is the inverse of the median ms/frame
        assert len(row[5].split()) == 2  # one figure per round
    assert rows["torch"][4] == "1.00"
    assert rows["openvino"][6] and not rows["onnx"][6] and not rows["torch"][6]  # auto picks OpenVINO here


def test_export_prints_the_cached_model_and_refuses_torch(model_path) -> None:
    result = _smarteye("export", "--backend", "openvino", str(model_path))
    assert result.returncode == 0, result.stderr
    exported = entry_dir(model_path, "openvino", 640, False) / "yolov8n_openvino_model"
    assert result.stdout.strip() == f"openvino: {exported}"
    refused = _smarteye("export", "--backend", "torch", str(model_path))
    assert refused.returncode == 2 and "nothing to export" in refused.stderr
    missing = _smarteye("export", "no/such/model.pt")
    assert missing.returncode == 2 and "model file not found: no/such/model.pt" in missing.stderr
