"""Two `smarteye edge` processes on one host with the default video and metrics settings: the second
starts, warns that WHEP's port (video.whep.port) is taken and serves WHEP on another, and the first keeps
running and serving (issue 14: optional parts never block the main job)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.edge_process import smarteye_command
from tests.support.polling import wait_for
from tests.support.secure_broker import cli_login

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")]
WHEP_LINE = re.compile(r"WHEP endpoint on (http://127\.0\.0\.1:(\d+)/whep)")


def _start(
    name: str, video: Path, model: Path, broker: MosquittoBroker, tmp_path: Path
) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    broker_url, ca_env = cli_login(broker, name)
    env = {**os.environ, **ca_env, "SMARTEYE_EDGE_MQTT__SPOOL_DIR": str(tmp_path / f"spool-{name}")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*smarteye_command(), "edge", "--source", f"cam={video}", "--model", str(model), "--mqtt", broker_url,
             "--node", name, "--log-level", "info"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    return proc, log


def _whep(log: Path) -> tuple[str, int] | None:
    found = WHEP_LINE.search(log.read_text(errors="replace"))
    return (found.group(1), int(found.group(2))) if found else None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_second_node_takes_another_whep_port_and_the_first_keeps_running(media, model_path, tmp_path) -> None:
    video = media("vtest.avi")
    with MosquittoBroker.secured(["edge-one", "edge-two"]) as broker:
        # Both load the model at once (the slow part); whichever binds WHEP second must move on.
        nodes = [_start(name, video, model_path, broker, tmp_path) for name in ("edge-one", "edge-two")]
        try:
            for proc, log in nodes:
                wait_for(lambda proc=proc, log=log: _whep(log) is not None or proc.poll() is not None, timeout=90)
                assert proc.poll() is None, log.read_text()
            (url_a, port_a), (url_b, port_b) = (_whep(log) for _, log in nodes)  # type: ignore[misc]
            assert port_a != port_b
            logs = [log.read_text(errors="replace") for _, log in nodes]
            moved = [
                text for text, port in zip(logs, (port_a, port_b), strict=True)
                if re.search(rf"video\.whep\.port: port \d+ on 127\.0\.0\.1 is taken; serving on {port} ", text)
            ]  # fmt: skip
            assert moved, "no node warned that the WHEP port was taken:\n" + "\n".join(logs)
            time.sleep(2)
            for proc, log in nodes:  # neither stopped because of the other
                assert proc.poll() is None, log.read_text()
            for url in (url_a, url_b):  # both WHEP servers answer, each with its node's stream
                response = httpx.get(url.removesuffix("/whep") + "/streams", timeout=5)
                assert response.status_code == 200 and [s["stream"] for s in response.json()] == ["cam"]
        finally:
            for proc, _ in reversed(nodes):
                _stop(proc)
