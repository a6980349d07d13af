"""SIGTERM, as a service manager sends it: the real `smarteye edge` and `smarteye ground-station run`
processes, on the secured broker, with the edge's video uplink open to the station.  Both exit within
5 s (the station took 12 s), the edge's spool file is kept, its streams' retained status says `stopped`
(it could stay `live`) and its availability `offline`."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.sim.ports import free_tcp_port
from tests.support.edge_process import EdgeProcess, smarteye_command, write_config
from tests.support.secure_mqtt import SecureRecorder, report_figure

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")]
EXIT_LIMIT_S = 5.0


def sigterm(proc: subprocess.Popen[bytes]) -> float:
    """Seconds from SIGTERM to exit (killed, and failing the test, after 30 s)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - started


def test_edge_and_station_exit_within_5_s_keep_the_spool_and_say_offline(media, model_path, tmp_path: Path) -> None:
    with MosquittoBroker.secured(["site-a"]) as broker:
        port = free_tcp_port()
        station_config = tmp_path / "station.yaml"
        station_config.write_text(yaml.safe_dump({
            "mqtt": {**broker.client_settings("station"), "client_id": "station-sigterm"},
            "database_url": f"sqlite:///{tmp_path / 'station.sqlite'}",
            "web": {"port": port, "secure_cookies": False},
        }))  # fmt: skip
        station_cli = [*smarteye_command(), "ground-station"]
        create_token = [*station_cli, "create-token", "site-a", "--config", str(station_config)]
        token = subprocess.run(create_token, check=True, capture_output=True, text=True).stdout.strip()
        station_log = (tmp_path / "station.log").open("wb")
        station = subprocess.Popen([*smarteye_command(), "ground-station", "run", "--config", str(station_config)],
                                   stdout=station_log, stderr=subprocess.STDOUT)  # fmt: skip
        recorder = SecureRecorder(broker, "smarteye/v1/site-a/#")
        spool_dir = tmp_path / "spool"
        edge_config = write_config(
            tmp_path / "edge.yaml",
            node="site-a",
            sources=[{"name": "walkway", "url": str(media("vtest.avi")), "loop": True}],
            detector={"model": str(model_path), "imgsz": 320},
            mqtt={**broker.client_settings("site-a"), "spool_dir": str(spool_dir)},
            video={"uplink": {"url": f"http://127.0.0.1:{port}", "token": token}},
            status_interval_s=1.0,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            # A browser's live socket stays open on the station through its stop.
            subprocess.run([*smarteye_command(), "ground-station", "create-user", "viewer", "--role", "viewer",
                            "--password-stdin", "--config", str(station_config)], input="viewer-password-1",
                           check=True, capture_output=True, text=True)  # fmt: skip
            login = httpx.post(f"http://127.0.0.1:{port}/api/login",
                               json={"username": "viewer", "password": "viewer-password-1"})  # fmt: skip
            assert login.status_code == 200, login.text
            cookies = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
            live = connect(f"ws://127.0.0.1:{port}/api/live", origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
                           additional_headers={"Cookie": cookies})  # fmt: skip
            with EdgeProcess(edge_config, tmp_path / "edge.log") as edge:
                assert edge.proc is not None
                recorder.wait_for(lambda: any(s["state"] == "live" for s in recorder.json_on("/status/walkway")),
                                  90, "the stream live")  # fmt: skip
                recorder.wait_for(lambda: recorder.json_on("/events/walkway"), 60, "an event")
                assert live.recv(timeout=10)  # the live socket works
                time.sleep(2.0)  # the uplink is up and the station holds its socket
                edge_exit = sigterm(edge.proc)
                edge_code = edge.proc.returncode
            station_exit = sigterm(station)
            time.sleep(0.5)
            statuses = recorder.json_on("/status/walkway")
            availability = [m.payload for m in recorder.snapshot() if m.topic.endswith("/availability")]
        finally:
            with contextlib.suppress(Exception):
                live.close()
            recorder.close()
            if station.poll() is None:
                station.kill()
            station_log.close()
        # What a newcomer sees: the retained values after the stop.
        late = SecureRecorder(broker, "smarteye/v1/site-a/#")
        try:
            late.wait_for(lambda: len(late.json_on("/status/walkway")) >= 1, 5, "the retained status")
            retained_status = late.json_on("/status/walkway")[-1]["state"]
            late.wait_for(lambda: any(m.topic.endswith("/availability") for m in late.snapshot()), 5, "availability")
            retained_availability = [m.payload for m in late.snapshot() if m.topic.endswith("/availability")][-1]
        finally:
            late.close()
    report_figure("sigterm", edge_exit_s=round(edge_exit, 2), station_exit_s=round(station_exit, 2),
                  retained_status=retained_status)  # fmt: skip
    log = (tmp_path / "edge.log").read_text(errors="replace")
    assert edge_code == 0, log[-3000:]
    assert edge_exit < EXIT_LIMIT_S, f"edge took {edge_exit:.1f} s to exit\n{log[-3000:]}"
    assert station_exit < EXIT_LIMIT_S, f"station took {station_exit:.1f} s to exit"
    assert station.returncode == 0, (tmp_path / "station.log").read_text(errors="replace")[-3000:]
    assert statuses[-1]["state"] == "stopped" and retained_status == "stopped"
    assert b"offline" in availability[-1] and b"offline" in retained_availability
    assert (spool_dir / "edge-site-a.sqlite").exists()  # the spool is kept for the next start
