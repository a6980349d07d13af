"""The quick start: `smarteye edge --source …` without a config file (`smarteye demo` is tested in
test_web_ui.py, where a browser also checks its ground station)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from smarteye.sim.broker import MosquittoBroker
from tests.support.edge_process import smarteye_command
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.secure_broker import cli_login

pytestmark = pytest.mark.slow


def test_quick_start_flags_without_config(media, model_path, tmp_path) -> None:
    with MosquittoBroker.secured(["quick"]) as broker:
        recorder = MqttRecorder(broker, "smarteye/v1/#")
        login, ca_env = cli_login(broker, "quick")
        env = {**os.environ, **ca_env, "HOME": str(tmp_path)}  # the default spool lives under ~/.cache
        proc = subprocess.Popen(
            [
                *smarteye_command(),
                "edge",
                "--source",
                f"walkway={media('vtest.avi')}",
                "--model",
                str(model_path),
                "--mqtt",
                login,
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
