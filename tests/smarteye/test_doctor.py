"""`smarteye doctor` as a user runs it: on a machine missing ffmpeg (hidden from PATH) with its broker
stopped it names both parts and their fixes and exits non-zero; on a complete machine it exits zero."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.assets import find_asset
from smarteye.doctor import Level, check_ports
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.edge_process import smarteye_command

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")


def _path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH with every program of the current one except `hidden` (symlinks in one folder)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = folder / name
            if name not in hidden and not target.exists() and os.access(os.path.join(directory, name), os.X_OK):
                target.symlink_to(os.path.join(directory, name))
    return str(folder)


def _doctor(mqtt_url: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([*smarteye_command(), "doctor", "--mqtt", mqtt_url], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def _row(output: str, part: str) -> str:
    rows = [line for line in output.splitlines() if line.startswith(f"│ {part} ")]
    assert rows, output
    return rows[0]


@needs_mosquitto
def test_missing_ffmpeg_and_stopped_broker_are_named_with_their_fix(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed: nothing to hide")
    with MosquittoBroker.secured(["site-a"]) as broker:  # a site's broker: TLS (mqtts://), logins, the ACL
        url = broker.url
        broker.stop()
        done = _doctor(url, _path_without(tmp_path, "ffmpeg"))
    assert done.returncode == 1, done.stdout + done.stderr
    ffmpeg = _row(done.stdout, "ffmpeg")
    assert "FAIL" in ffmpeg and "not on PATH" in ffmpeg and "apt-get install ffmpeg" in ffmpeg
    mqtt = _row(done.stdout, "MQTT broker")
    assert (
        "FAIL" in mqtt and f"nothing answers on 127.0.0.1:{broker.port}" in mqtt and "systemctl start mosquitto" in mqtt
    )
    assert "the main job cannot run" in done.stderr


@needs_mosquitto
def test_complete_machine_exits_zero() -> None:
    missing = [part for part, ok in (
        ("ffmpeg", shutil.which("ffmpeg")), ("model", find_asset("yolov8n.pt", "models")),
        ("vtest.avi", find_asset("vtest.avi", "media")),
        ("GStreamer RTSP server", os.path.exists("/usr/bin/python3")),
    ) if not ok]  # fmt: skip
    if missing:
        pytest.skip(f"not a complete machine: {', '.join(missing)}")
    with MosquittoBroker.secured(["site-a"]) as broker:  # a site's broker: TLS (mqtts://), logins, the ACL
        done = _doctor(broker.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "ready: run `smarteye demo`" in done.stdout
    for part in ("MQTT broker", "ffmpeg", "GStreamer RTSP server", "Mosquitto", "model", "runtime", "media vtest.avi"):
        assert " ok " in _row(done.stdout, part), done.stdout


def test_a_taken_port_is_only_a_warning_naming_the_key() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        (check,) = check_ports((("video.whep.port", port, "edge WHEP", "set video.whep.port"),))
    assert check.level is Level.WARN and "video.whep.port" in check.fix
