"""What the demo runs with on a bare machine: without a model it stops before starting anything, naming the
command that gets one; without the optional videos it leaves them out and says how to add each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge import assets
from smarteye.cli import app
from smarteye.demo_assets import DemoCannotRun, gather_demo_assets


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets").mkdir()
    monkeypatch.setenv("SMARTEYE_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("SMARTEYE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTEYE_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(assets, "PROJECT_ROOT", tmp_path / "project")
    return tmp_path


def _add(root: Path, kind: str, name: str) -> Path:
    (root / kind).mkdir(parents=True, exist_ok=True)
    (root / kind / name).write_bytes(b"x")
    return root / kind / name


def test_no_model_stops_the_demo_with_the_command_that_gets_one(bare_machine: Path) -> None:
    with pytest.raises(DemoCannotRun, match=r"no detection model.*smarteye assets fetch yolov8n\.pt"):
        gather_demo_assets()
    result = CliRunner().invoke(app, ["demo", "--duration", "1"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no detection model, so nothing to run: yolov8n.pt: not downloaded from")
    assert "`smarteye assets fetch yolov8n.pt`" in result.output


def test_only_model_and_site_video_leaves_out_parking_and_the_recording(bare_machine: Path) -> None:
    model = _add(bare_machine / "assets", "models", "yolov8n.pt")
    video = _add(bare_machine / "assets", "media", "vtest.avi")
    found = gather_demo_assets(progress=False)
    assert (found.model, found.site_video, found.parking_video, found.drone_recording) == (model, video, None, None)
    parking, drone = found.left_out
    assert "parking-lot camera" in parking and "`smarteye assets fetch intel_car-detection.mp4`" in parking
    assert "the drone is simulated instead" in drone and "`smarteye assets fetch kwiver_aphill_short.ts`" in drone
    assert "SMARTEYE_OFFLINE" in drone


def test_everything_present_leaves_nothing_out(bare_machine: Path) -> None:
    for kind, name in (("models", "yolov8n.pt"), ("media", "vtest.avi"), ("media", "intel_car-detection.mp4"),
                       ("media", "kwiver_aphill_short.ts")):  # fmt: skip
        _add(bare_machine / "assets", kind, name)
    assert gather_demo_assets(progress=False).left_out == []
    shutil.rmtree(bare_machine / "assets" / "models")  # and the model is what it cannot do without
    with pytest.raises(DemoCannotRun):
        gather_demo_assets(progress=False)
