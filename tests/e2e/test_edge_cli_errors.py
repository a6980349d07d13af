"""The real `smarteye edge` process refusing to start, with one clear line and no traceback.

Here rather than with the configuration tests because the process gets as far as building the node, which
loads the detection stack (torch) before it finds the model missing: several seconds per run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_cli_missing_model_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smarteye", "edge", "--source", "x.mp4", "--model", str(tmp_path / "nope.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: model file not found: {tmp_path / 'nope.pt'}" in result.stderr
