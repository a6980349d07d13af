"""An alert's clip plays and seeks in a real headless Chromium `<video>` served by the real GroundStation
(the browser's own Range requests against /api/alerts/<id>/clip, under the pages' Content-Security-Policy)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from ground_station.auth.roles import Role
from ground_station.service import GroundStation
from ground_station.store import AlertMedia, Received
from smarteye.sim.broker import find_mosquitto
from smarteye.sim.ports import free_tcp_port
from tests.support.alerts import make_alert, mp4_bytes
from tests.support.browser import chromium, shot
from tests.support.ingest import make_config
from tests.support.secure_broker import secured_test_broker

PASSWORD = "correct horse battery"
PLAY_AND_SEEK = """
const done = arguments[arguments.length - 1];
const video = document.createElement("video");
video.muted = true;
Object.assign(video.style, {position: "fixed", top: "0", left: "0", width: "640px", zIndex: "1000"});
video.src = "/api/alerts/clip1/clip";
document.body.appendChild(video);
const result = {};
video.addEventListener("error", () => done({error: video.error && video.error.code}));
video.play().then(() => {
  const started = performance.now();
  const check = () => {
    if (video.currentTime > 0.5) {
      result.played = video.currentTime;
      result.duration = video.duration;
      video.addEventListener("seeked", () => { result.seeked = video.currentTime; done(result); }, {once: true});
      video.currentTime = 3.2;
    } else if (performance.now() - started > 10000) {
      done({stuck: video.currentTime, state: video.readyState});
    } else {
      setTimeout(check, 50);
    }
  };
  check();
}, (e) => done({error: String(e)}));
"""


@pytest.mark.timeout(120)
def test_a_clip_plays_and_seeks_in_the_browser(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with secured_test_broker() as broker:
        config = make_config(broker, f"sqlite:///{tmp_path / 'gs.sqlite'}", f"test-{uuid.uuid4().hex[:8]}/v1",
                             web={"port": free_tcp_port(), "secure_cookies": False})  # fmt: skip
        station = GroundStation(config)
        station.start()
        try:
            station.accounts.create_user("vic", PASSWORD, Role.VIEWER)
            mp4 = mp4_bytes(seconds=5, width=320, height=240)
            alert = make_alert("clip1")
            station.store.write_batch([Received(alert, time.time(), alert.model_dump_json())],
                                      media=[AlertMedia("clip", "clip1", "node1", "cam1", mp4)])  # fmt: skip
            with chromium(tmp_path / "profile") as driver:
                driver.get(station.url + "/login")
                status = driver.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "fetch('/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                    f" body: JSON.stringify({{username: 'vic', password: '{PASSWORD}'}})}}).then(r => done(r.status));"
                )
                assert status == 200
                driver.set_script_timeout(30)
                result = driver.execute_async_script(PLAY_AND_SEEK)
                shot(driver, "alert-clip-playback")
                assert "error" not in result and "stuck" not in result, result
                assert result["played"] > 0.5 and abs(result["duration"] - 5.0) < 0.3, result
                assert abs(result["seeked"] - 3.2) < 0.3, result
        finally:
            station.stop()
