"""The simulated site cameras: real GStreamer RTSP server, read back with PyAV (no mocks).

Assets come from $SMARTEYE_ASSETS (default ../shared) via the conftest ``media`` fixture;
everything skips if python3-gi / the GStreamer RTSP server is not installed. The looping test reads more than
two passes of a file in real time: it is in tests/e2e/test_rtsp_loop.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from smarteye.sim.ports import free_tcp_port
from smarteye.sim.rtsp_server import RtspServer
from tests.support.rtsp_reading import SHORT, VTEST, frame_count, read_frames, source_size


@pytest.fixture(scope="module")
def cameras(gst_available: None, media) -> Iterator[RtspServer]:
    """One looping server with both sample files, shared by the read-only tests."""
    server = RtspServer({"/short": media(SHORT), "/vtest": media(VTEST)}, loop=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(("mount", "name"), [("/short", SHORT), ("/vtest", VTEST)])
def test_frames_have_source_size(cameras: RtspServer, media, mount: str, name: str) -> None:
    width, height = source_size(media(name))
    frames = read_frames(cameras.url(mount), 5)
    assert len(frames) == 5
    assert {(w, h) for w, h, _ in frames} == {(width, height)}


def test_without_loop_the_stream_ends(gst_available: None, media) -> None:
    file_frames = frame_count(media(SHORT))
    with RtspServer({"/cam1": media(SHORT)}, loop=False) as server:
        started = time.monotonic()
        frames = read_frames(server.url("/cam1"), 10 * file_frames)
        assert 0 < len(frames) <= file_frames
        assert time.monotonic() - started < 10


def test_stop_refuses_then_restart_serves_on_same_port(gst_available: None, media) -> None:
    server = RtspServer({"cam1": media(SHORT)})
    try:
        server.start()
        url = server.url("/cam1")
        port = server.port
        assert server.running
        assert len(read_frames(url, 3)) == 3

        server.stop()
        server.stop()  # idempotent
        assert not server.running
        with pytest.raises((av.error.FFmpegError, OSError)):
            read_frames(url, 1)

        server.restart()
        assert server.running and server.port == port and server.url("/cam1") == url
        assert len(read_frames(url, 3)) == 3
    finally:
        server.stop()
    assert not server.running


def test_start_errors_are_reported(gst_available: None, media, tmp_path: Path) -> None:
    missing = RtspServer({"/cam1": tmp_path / "missing.mp4"})
    with pytest.raises(RuntimeError, match=r"missing\.mp4"):
        missing.start()
    assert not missing.running

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_tcp_port()))
        busy.listen()
        taken = RtspServer({"/cam1": media(SHORT)}, port=busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="cannot listen"):
            taken.start()
        assert not taken.running


def test_url_names_mount_and_port() -> None:
    server = RtspServer({"cam1": Path("/nonexistent.mp4")}, port=8554)
    assert server.url("/cam1") == "rtsp://127.0.0.1:8554/cam1"
    assert server.url("cam1") == "rtsp://127.0.0.1:8554/cam1"
    with pytest.raises(KeyError):
        server.url("/cam2")
    assert not server.running
    server.stop()  # never started: still fine
