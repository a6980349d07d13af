"""GStreamer's webrtcbin as a WHEP viewer of both endpoints (the edge's and the station's relay).

aiortc answered an `actpass` offer as the DTLS client with ECDSA-only suites; webrtcbin (RSA certificate)
then failed the handshake ("no shared cipher") and got no video. The viewer here is a real webrtcbin in a
child process under the system python (smarteye/sim/gst_whep_client.py), decoding real H.264."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from edge.config.video import UplinkConfig
from edge.outputs.video.uplink import VideoUplink
from smarteye.media.webrtc import WhepServer
from smarteye.media.whep_http import add_whep_routes
from tests.support.h264 import Encoding, live_camera
from tests.support.polling import wait_for
from tests.support.video_station import open_video_station

CLIENT = Path(__file__).resolve().parents[2] / "smarteye" / "sim" / "gst_whep_client.py"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def webrtcbin() -> None:
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0');"
        "from gi.repository import Gst; Gst.init(None);"
        "assert Gst.ElementFactory.find('webrtcbin') and Gst.ElementFactory.find('nicesrc')"
    )
    if subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode != 0:
        pytest.skip("GStreamer webrtcbin (gir1.2-gst-plugins-bad-1.0, gstreamer1.0-nice) is not installed")


@pytest.fixture
def camera() -> Iterator[Encoding]:
    """A real libx264 stream at 10 fps, keyframe every second."""
    with live_camera() as encoding:
        yield encoding


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
        thread.start()
        wait_for(lambda: server.started, timeout=10)
        servers.append((server, thread))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def _gstreamer_view(url: str, token: str | None = None) -> dict[str, object]:
    command = [SYSTEM_PYTHON, str(CLIENT), url, "--frames", "5", "--timeout", "20"]
    if token:
        command += ["--token", token]
    run = subprocess.run(command, capture_output=True, text=True, timeout=40)
    lines = run.stdout.strip().splitlines()
    assert lines, f"the GStreamer client printed nothing: {run.stderr[-2000:]}"
    return json.loads(lines[-1])


def test_gstreamer_webrtcbin_plays_the_edge_whep_endpoint(webrtcbin: None, camera: Encoding, serve) -> None:  # type: ignore[no-untyped-def]
    whep = WhepServer()
    app = FastAPI()
    add_whep_routes(app, "/whep/{stream}", whep, lambda p: (camera.fanout, "edge-1") if p["stream"] == "cam" else None)
    base = serve(app)
    result = _gstreamer_view(f"{base}/whep/cam")
    assert result["error"] is None and result["connection"] == "connected", result
    assert result["frames"] >= 5 and (result["width"], result["height"]) == (160, 120)  # type: ignore[operator]


def test_gstreamer_webrtcbin_plays_the_station_relay(webrtcbin: None, camera: Encoding, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_video_station(tmp_path) as station:
        base = serve(station.app)
        uplink = VideoUplink(UplinkConfig(url=base, token=station.edge_token), "e1", {"cam": camera.fanout})
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        task = asyncio.run_coroutine_threadsafe(uplink.run(), loop)
        try:
            wait_for(lambda: station.relay.fanout("e1", "cam") is not None, timeout=10)
            result = _gstreamer_view(f"{base}/api/whep/e1/cam", token=station.viewer_token)
            assert result["error"] is None and result["connection"] == "connected", result
            assert result["frames"] >= 5 and (result["width"], result["height"]) == (160, 120)  # type: ignore[operator]
        finally:
            task.cancel()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
