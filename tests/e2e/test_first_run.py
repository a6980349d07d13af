"""A new user's first run (issue 14): a plain `git clone` of the repository, no ../shared beside it, no network
(every proxy points at a closed port, so any download fails as it would offline), SMARTEYE_ASSETS holding only
models/. `smarteye demo` still runs: the site camera plays opencv-doc's vtest.avi and its events reach the
ground station's API, the drone is simulated (synthetic MAVLink over the site camera's scene) and shows on the
station's telemetry API, and the output names what was left out and the command that adds it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from edge.assets import cache_dir
from smarteye.demo import SYNTHETIC_SITE
from smarteye.sim.broker import find_mosquitto
from smarteye.sim.ports import free_tcp_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]
OPENCV_DOC_VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SESSION_COOKIE = "smarteye_session"


def _first_run_env(clone: Path, tmp_path: Path, model_path: Path) -> dict[str, str]:
    assets = tmp_path / "assets" / "models"  # a folder that holds only models/ (the model)
    assets.mkdir(parents=True)
    (assets / model_path.name).symlink_to(model_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    # The model's one-off OpenVINO export is kept between test runs (it is not what this test is about).
    exports = cache_dir() / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    (cache / "exports").symlink_to(exports)
    dead_proxy = f"http://127.0.0.1:{free_tcp_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTEYE_") and "proxy" not in k.lower()}
    env.update({
        "PYTHONPATH": str(clone), "SMARTEYE_ASSETS": str(tmp_path / "assets"), "SMARTEYE_CACHE": str(cache),
        "HOME": str(tmp_path / "home"), "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
        **{name: dead_proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })  # fmt: skip
    return env


def test_demo_from_a_plain_clone_without_shared_or_network(model_path: Path, tmp_path: Path, gst_available) -> None:
    if not OPENCV_DOC_VTEST.exists():
        pytest.skip("opencv-doc is not installed (scripts/setup.sh installs it)")
    if find_mosquitto() is None or shutil.which("git") is None:
        pytest.skip("needs mosquitto and git")
    clone = tmp_path / "work" / "SmartEye"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    assert not (clone.parent / "shared").exists()
    env = _first_run_env(clone, tmp_path, model_path)
    python = [sys.executable, "-m", "smarteye"]

    # The clone's code runs (not the checkout's), and its asset lookup finds vtest.avi in opencv-doc's folder.
    listed = subprocess.run([*python, "assets", "list"], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"media/vtest\.avi\s+{re.escape(str(OPENCV_DOC_VTEST))}", listed.stdout), listed.stdout
    assert "media/kwiver_aphill_short.ts" in listed.stdout and "MISSING" in listed.stdout
    where = subprocess.run([sys.executable, "-c", "import edge.assets; print(edge.assets.__file__)"], cwd=clone,
                           env=env, capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert where.startswith(str(clone)), where

    proc = subprocess.Popen([*python, "demo", "--duration", "500"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.extend(s), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]  # fmt: skip
    for reader in readers:
        reader.start()
    try:
        login = _wait(lambda: re.search(r"ground station: (http://\S+)\s+login (\S+) / (\S+)", "".join(out)),
                      proc, out, err, 180)  # fmt: skip
        url, user, password = login.groups()
        response = httpx.post(f"{url}/api/login", json={"username": user, "password": password}, timeout=10)
        assert response.status_code == 200, response.text
        cookies = {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"}  # Secure cookie over http

        def api(path: str) -> list[dict]:
            answer = httpx.get(f"{url}{path}", headers=cookies, timeout=10)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            return body["items"] if isinstance(body, dict) and "items" in body else body

        # Objects of vtest.avi (people crossing a square) tracked by the site camera and stored by the station.
        events = _wait(lambda: api("/api/events?stream=site-cam&type=new"), proc, out, err, 300)
        assert all((e["node"], e["stream"], e["type"]) == ("demo-edge", "site-cam", "new") for e in events)
        assert all(e["label"] and 0 < e["score"] <= 1 for e in events), events

        def drone() -> dict | None:
            return next((t for t in api("/api/telemetry") if t["stream"] == "drone" and t.get("vehicle")), None)

        telemetry = _wait(drone, proc, out, err, 120)
        vehicle = telemetry["vehicle"]
        assert telemetry["source"] == "mavlink"
        assert abs(vehicle["lat"] - SYNTHETIC_SITE[0]) < 0.01 and abs(vehicle["lon"] - SYNTHETIC_SITE[1]) < 0.01
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in readers:
            reader.join(10)
    screen, errors = "".join(out), "".join(err)
    assert "Traceback" not in errors, errors
    notes = [line for line in screen.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, screen[:3000]  # said once each
    assert "parking-lot camera" in notes[0] and "`smarteye assets fetch intel_car-detection.mp4`" in notes[0]
    assert "the drone is simulated" in screen and "`smarteye assets fetch kwiver_aphill_short.ts`" in screen
    assert not (tmp_path / "cache" / "media" / "vtest.avi").exists()  # used in place from opencv-doc


def _wait(probe, proc: subprocess.Popen, out: list[str], err: list[str], timeout: float):
    """Poll `probe` until it gives something truthy; fail with the demo's output if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        assert proc.poll() is None, f"the demo exited ({proc.returncode}):\n{''.join(out)[-3000:]}\n{''.join(err)}"
        time.sleep(1)
    raise AssertionError(f"timed out:\n{''.join(out)[-3000:]}\n{''.join(err)[-3000:]}")
