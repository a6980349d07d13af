"""Reading the simulated RTSP cameras back with PyAV (FFmpeg), as the edge's reader does, and the files they
play, decoded locally."""

from __future__ import annotations

import functools
from pathlib import Path

import av

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
