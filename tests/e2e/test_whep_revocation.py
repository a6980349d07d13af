"""Issue 12: revoking a token, disabling a user or logging out ends that credential's WHEP viewer sessions.

The real station (`smarteye ground-station run`, its own process), real H.264 from a node's uplink, and real
aiortc viewers (smarteye/sim/whep_viewer.py) playing it, one per way a credential goes. A WHEP session is a
peer connection that outlives its HTTP request: before this, a revoked viewer kept playing. Each must end
within seconds of its credential (the others play on), the station's session count drop, its UDP sockets be
released (counted in the station process's /proc) and each closure be in the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge.config.video import UplinkConfig
from edge.outputs.video.uplink import VideoUplink
from smarteye.cli import STATION_ENV_PREFIX
from smarteye.sim.broker import STATION_USER, MosquittoBroker, find_mosquitto
from smarteye.sim.ports import free_tcp_port
from smarteye.sim.whep_viewer import WhepViewer
from tests.support.h264 import Encoding, live_camera
from tests.support.polling import wait_for
from tests.support.secure_broker import cli_login

PASSWORD = "revocation-test-password"
ENDED_WITHIN_S = 8.0  # the station re-checks every 2 s; generous for a loaded 2-core machine


def _udp_sockets(pid: int) -> int:
    """UDP sockets held by process `pid`: its descriptors whose inode is in the UDP tables."""
    inodes: set[str] = set()
    for table in ("udp", "udp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as rows:
            inodes.update(row.split()[9] for row in list(rows)[1:])
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            count += link.startswith("socket:[") and link[8:-1] in inodes
    return count


def _viewers(client: httpx.Client) -> float:
    match = re.search(r"^smarteye_video_viewers (\S+)$", client.get("/metrics").text, re.M)
    assert match, "the station's /metrics has no smarteye_video_viewers"
    return float(match.group(1))


def _smarteye() -> list[str]:
    script = Path(sys.executable).with_name("smarteye")
    return [str(script)] if script.exists() else [sys.executable, "-m", "smarteye"]


@pytest.fixture
def camera() -> Iterator[Encoding]:
    """A real libx264 stream at 10 fps, keyframe every second."""
    with live_camera() as encoding:
        yield encoding


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    """The station process; accounts made beforehand in its database: admin ada, viewers val and una, the
    viewer token `wall` and node e1's uplink token (returned by name)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    from ground_station.auth.accounts import Accounts
    from ground_station.auth.roles import Role
    from ground_station.store.store import Store
    from tests.support.accounts import FAST_HASHER

    database = f"sqlite:///{tmp_path / 'ground.sqlite'}"
    store = Store(database)
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    for user, role in (("ada", Role.ADMIN), ("val", Role.VIEWER), ("una", Role.VIEWER)):
        accounts.create_user(user, PASSWORD, role)
    tokens = {name: accounts.create_token(name, role, "test")[1] for name, role in (("e1", Role.EDGE),
                                                                                    ("wall", Role.VIEWER))}  # fmt: skip
    store.close()
    broker = MosquittoBroker.secured([]).start()  # the station's own login over TLS; no node speaks MQTT here
    mqtt_url, ca_env = cli_login(broker, STATION_USER, STATION_ENV_PREFIX)
    port = free_tcp_port()
    log = (tmp_path / "station.log").open("wb")
    process = subprocess.Popen(
        [*_smarteye(), "ground-station", "run", "--database", database, "--port", str(port), "--mqtt", mqtt_url,
         "--log-level", "info"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ca_env},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert process.poll() is None, f"the station exited; see {tmp_path / 'station.log'}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
            return False

        wait_for(healthy, timeout=60)
        yield process, url, tokens
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        broker.close()


def _login(url: str, user: str) -> dict[str, str]:
    """A browser's credential: the session cookie and its CSRF token."""
    response = httpx.post(f"{url}/api/login", json={"username": user, "password": PASSWORD})
    response.raise_for_status()
    return {"Cookie": f"smarteye_session={response.cookies['smarteye_session']}",
            "X-CSRF-Token": response.json()["csrf_token"]}  # fmt: skip


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the station's descriptors in /proc")
def test_revoked_token_disabled_user_and_logout_end_their_whep_sessions(camera: Encoding, station) -> None:  # type: ignore[no-untyped-def]
    process, url, tokens = station
    uplink = VideoUplink(UplinkConfig(url=url, token=tokens["e1"]), "e1", {"cam": camera.fanout})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sending = asyncio.run_coroutine_threadsafe(uplink.run(), loop)
    admin, val, una = _login(url, "ada"), _login(url, "val"), _login(url, "una")
    client = httpx.Client(base_url=url, timeout=10)
    try:
        wait_for(lambda: any(s["state"] == "live" for s in client.get("/api/video/streams", headers=val).json()),
                 timeout=30)  # fmt: skip
        sockets_before = _udp_sockets(process.pid)
        asyncio.run(_play_then_revoke(url, client, tokens["wall"], admin, val, una))
        wait_for(lambda: _viewers(client) == 0, timeout=5)
        assert _udp_sockets(process.pid) == sockets_before, "the ended sessions left UDP sockets open"
        audit = client.get("/api/audit", params={"action": "access.ended"}, headers=admin).json()["items"]
        assert {(e["actor"], e["target"], e["detail"]["via"]) for e in audit} == {
            ("token:wall", "whep e1/cam", "token"),
            ("val", "whep e1/cam", "session"),
            ("una", "whep e1/cam", "session"),
        }
    finally:
        client.close()
        sending.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


async def _play_then_revoke(
    url: str, client: httpx.Client, wall: str, admin: dict[str, str], val: dict[str, str], una: dict[str, str]
) -> None:
    whep = f"{url}/api/whep/e1/cam"
    viewers = {
        "token": WhepViewer(whep, {"Authorization": f"Bearer {wall}"}),
        "disabled": WhepViewer(whep, val),
        "logout": WhepViewer(whep, una),
    }
    try:
        for viewer in viewers.values():
            await viewer.start()
        await _until(lambda: all(v.stats.frames >= 5 for v in viewers.values()), 30, "every viewer plays")
        assert _viewers(client) == 3

        token_id = next(t["id"] for t in client.get("/api/tokens", headers=admin).json() if t["name"] == "wall")
        steps = [
            ("token", lambda: client.delete(f"/api/tokens/{token_id}", headers=admin)),
            ("disabled", lambda: client.patch("/api/users/val", json={"disabled": True}, headers=admin)),
            ("logout", lambda: client.post("/api/logout", headers=una)),
        ]
        for done, (name, revoke) in enumerate(steps, start=1):
            assert revoke().status_code == 200
            ended = viewers.pop(name)
            await _until(lambda v=ended: v.pc.connectionState in ("closed", "failed"), ENDED_WITHIN_S,
                         f"the {name} viewer's connection ends")  # fmt: skip
            assert _viewers(client) == 3 - done
            viewers[f"ended:{name}"] = ended  # still stopped (and its DELETE refused) at the end
            playing = {v: v.stats.frames for n, v in viewers.items() if not n.startswith("ended:")}
            await _until(lambda p=playing: all(v.stats.frames > f for v, f in p.items()), 10,
                         "the other viewers play on")  # fmt: skip
    finally:
        for viewer in viewers.values():
            await viewer.stop()


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)
