"""`smarteye assets list` and `smarteye assets fetch` on a machine without the assets and without network."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge import assets
from smarteye.cli import app


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets" / "models").mkdir(parents=True)
    (tmp_path / "assets" / "models" / "yolov8n.pt").write_bytes(b"weights")
    monkeypatch.setenv("SMARTEYE_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("SMARTEYE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTEYE_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(assets, "PROJECT_ROOT", tmp_path / "project")
    return tmp_path


def test_list_shows_where_each_is_and_how_to_add_the_missing(bare_machine: Path) -> None:
    result = CliRunner().invoke(app, ["assets", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["models/yolov8n.pt"].endswith(str(bare_machine / "assets" / "models" / "yolov8n.pt"))
    drone = lines["media/kwiver_aphill_short.ts"]
    assert "MISSING" in drone and "smarteye assets fetch kwiver_aphill_short.ts" in drone


def test_fetch_offline_fails_with_one_line_per_asset(bare_machine: Path) -> None:
    result = CliRunner().invoke(app, ["assets", "fetch", "intel_car-detection.mp4"])
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith("error: intel_car-detection.mp4: not downloaded from https://github.com/intel-iot-devkit")
    assert "(SMARTEYE_OFFLINE is set)" in line and "`smarteye assets fetch intel_car-detection.mp4` once online" in line


def test_fetch_unknown_name_lists_the_known_ones(bare_machine: Path) -> None:
    result = CliRunner().invoke(app, ["assets", "fetch", "nope.mp4"])
    assert result.exit_code == 2
    assert "unknown asset(s) nope.mp4: one of yolov8n.pt, vtest.avi" in result.output
