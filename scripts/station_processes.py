"""What the benchmarks that run the real processes share: the `smarteye` command, a ground station with a viewer
account and a node's uplink token, its edge node, the streams it relays, and a clean stop."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from smarteye.sim.ports import free_tcp_port


def smarteye() -> list[str]:
    """The installed console script when present (as a user runs it), else `python -m smarteye`."""
    script = Path(sys.executable).with_name("smarteye")
    return [str(script)] if script.exists() else [sys.executable, "-m", "smarteye"]


async def viewer_headers(station: str, user: str, password: str) -> dict[str, str]:
    """Logged in like a browser: the session cookie (Secure: sent by hand) and its CSRF token."""
    async with httpx.AsyncClient(base_url=station) as client:
        response = await client.post("/api/login", json={"username": user, "password": password})
        response.raise_for_status()
        return {
            "X-CSRF-Token": response.json()["csrf_token"],
            "Cookie": f"smarteye_session={response.cookies['smarteye_session']}",
        }


class StationAndEdge:
    """`smarteye ground-station run` (SQLite in `workdir`, a viewer account, `node`'s uplink token) and, once
    `start_edge` is given its config, `smarteye edge`; logs in `workdir`."""

    def __init__(self, workdir: Path, broker_url: str, node: str, user: str) -> None:
        self.workdir = workdir
        self.port = free_tcp_port()
        self.station_url = f"http://127.0.0.1:{self.port}"
        database = f"sqlite:///{workdir / 'ground.sqlite'}"
        self.user, self.password = user, secrets.token_urlsafe(12)
        subprocess.run([*smarteye(), "ground-station", "create-user", self.user, "--role", "viewer",
                        "--database", database, "--password-stdin"], input=self.password + "\n", text=True,
                       check=True, capture_output=True)  # fmt: skip
        self.token = subprocess.run([*smarteye(), "ground-station", "create-token", node, "--database", database],
                                    check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
        self.station = subprocess.Popen(
            [*smarteye(), "ground-station", "run", "--database", database, "--port", str(self.port),
             "--mqtt", broker_url, "--log-level", "warning"],
            stdout=(workdir / "station.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.edge: subprocess.Popen[bytes] | None = None

    def start_edge(self, config: Path) -> None:
        self.edge = subprocess.Popen(
            [*smarteye(), "edge", "--config", str(config), "--log-level", "warning"],
            stdout=(self.workdir / "edge.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def live_streams(self, wanted: int, timeout: float = 120) -> list[dict[str, Any]]:
        """The streams the station relays once at least `wanted` are live (RuntimeError naming the logs if not)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.station_url) as client:
            while time.monotonic() < deadline:
                if self.station.poll() is not None or (self.edge is not None and self.edge.poll() is not None):
                    break
                try:
                    login = client.post("/api/login", json={"username": self.user, "password": self.password})
                    cookie = f"smarteye_session={login.cookies['smarteye_session']}"  # a Secure cookie: sent by hand
                    rows = client.get("/api/video/streams", headers={"Cookie": cookie}).json()
                    live = [r for r in rows if r.get("state") == "live"]
                    if len(live) >= wanted:
                        return live
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                time.sleep(0.5)
        raise RuntimeError(f"not {wanted} live stream(s) at the station; see {self.workdir}/edge.log, station.log")

    def stop(self) -> None:
        procs = [p for p in (self.edge, self.station) if p is not None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
