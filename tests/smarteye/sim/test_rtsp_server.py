"""The simulated site cameras: real GStreamer RTSP server, read back with PyAV (no mocks).

Assets come from $SMARTEYE_ASSETS (default ../shared) via the conftest ``media`` fixture;
everything skips if python3-gi / the GStreamer RTSP server is not installed.
"""

from __future__ import annotations

import functools
import itertools
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarteye.sim.ports import free_tcp_port
from smarteye.sim.rtsp_server import RtspServer

av = pytest.importorskip("av")

SHORT = "kwiver_aphill_short.ts"  # H.264 720x480, 48 frames, 1.6 s
VTEST = "vtest.avi"  # MS-MPEG4 768x576, 10 fps
OPEN_TIMEOUT = (8.0, 8.0)  # PyAV (open, read) seconds: a dead server fails fast
# Probe briefly, as the edge's reader does: FFmpeg's default probing of a live RTSP stream waits up to
# ~3 s (10 fps vtest) before the first frame, and the frames decoded afterwards are the same.
READ_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "200000"}


def read_frames(url: str, count: int) -> list[tuple[int, int, int | None]]:
    """Decode up to ``count`` frames from ``url``; returns (width, height, pts) per frame."""
    frames: list[tuple[int, int, int | None]] = []
    with av.open(url, options=READ_OPTIONS, timeout=OPEN_TIMEOUT) as container:
        for frame in container.decode(video=0):
            frames.append((frame.width, frame.height, frame.pts))
            if len(frames) >= count:
                break
    return frames


def source_size(path: Path) -> tuple[int, int]:
    """(width, height) of a file's first frame, decoded locally with PyAV."""
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        return first.width, first.height


@functools.cache
def frame_count(path: Path) -> int:
    """How many frames a file has, decoded locally with PyAV (once per file: several tests need it)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


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


def test_loop_plays_on_past_end_of_file(cameras: RtspServer, media) -> None:
    file_frames = frame_count(media(SHORT))
    wanted = 2 * file_frames + 15
    frames = read_frames(cameras.url("/short"), wanted)
    assert len(frames) == wanted, "stream ended instead of looping"
    pts = [p for _, _, p in frames if p is not None]
    assert len(pts) >= wanted - 2  # FFmpeg may leave the very first frame without pts
    # Never backwards across the loop points. (Not strictly increasing: this field-coded
    # source has one frame pair with equal timestamps per pass.)
    assert all(b >= a for a, b in itertools.pairwise(pts)), pts
    assert sum(b > a for a, b in itertools.pairwise(pts)) >= len(pts) - 1 - 3
    span = (pts[-1] - pts[0]) / 90_000  # RTP H.264 clock
    assert span > 2 * file_frames / 30.0  # more than two passes of a ~30 fps, 1.6 s file


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
