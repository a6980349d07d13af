"""The two commands a user starts with: `smarteye edge --source …` (no config file) and `smarteye demo`."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from edge.sim.broker import MosquittoBroker
from tests.edge_process import smarteye_command
from tests.mqtt_recorder import MqttRecorder

pytestmark = pytest.mark.slow


def test_quick_start_flags_without_config(media, model_path, tmp_path) -> None:
    with MosquittoBroker() as broker:
        recorder = MqttRecorder(broker.host, broker.port, "smarteye/v1/#")
        env = {**os.environ, "HOME": str(tmp_path)}  # the default spool lives under ~/.cache
        proc = subprocess.Popen(
            [
                *smarteye_command(),
                "edge",
                "--source",
                f"walkway={media('vtest.avi')}",
                "--model",
                str(model_path),
                "--mqtt",
                broker.url,
                "--node",
                "quick",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            recorder.wait_for(lambda: recorder.events(type="new", label="person"), 90, "a new person event")
        finally:
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=30)[0].decode()
        recorder.close()
    assert proc.returncode == 0, output
    event = recorder.events(type="new", label="person")[0]
    assert (event["node"], event["stream"]) == ("quick", "walkway")
    assert (tmp_path / ".cache" / "smarteye" / "spool" / "edge-quick.sqlite").exists()


def test_demo_shows_live_person_events(gst_available, media, model_path, tmp_path) -> None:
    for name in ("vtest.avi", "intel_car-detection.mp4", "kwiver_aphill_short.ts"):
        media(name)  # skips with the reason when assets are absent
    env = {**os.environ, "HOME": str(tmp_path), "COLUMNS": "200"}
    result = subprocess.run(
        [*smarteye_command(), "demo", "--duration", "50"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    screen = result.stdout
    assert "Traceback" not in result.stderr
    assert "site-cam" in screen and "parking" in screen, screen
    assert "live" in screen, screen
    rows = [line for line in screen.splitlines() if " new " in line or "│ new" in line]
    assert any("person" in row for row in rows), screen
    assert any("car" in row for row in screen.splitlines()), screen
    # The simulated drone's detections are geolocated (aphill flight, Virginia: 38.2°N 77.3°W).
    located = screen[screen.index("latest ground positions") :].splitlines()
    assert any("drone" in row and "38.2" in row and "-77.3" in row and "±" in row for row in located), screen
