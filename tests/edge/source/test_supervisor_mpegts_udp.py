"""Drone feed: MPEG-TS over UDP sent by a real ffmpeg; frames arrive stamped, KLV kept with its pts."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from edge.config import SourceConfig
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceSupervisor
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import SourceState
from tests.support.polling import wait_for


def udp_port_bound(port: int) -> bool:
    """Whether a UDP socket on this machine is bound to `port` (Linux's table of them)."""
    rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(int(row.split()[1].rsplit(":", 1)[1], 16) == port for row in rows)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_udp_mpegts_frames_and_klv_packets(media, tmp_path) -> None:
    port = free_tcp_port()  # a free number; UDP and TCP port spaces are separate but both are free here
    board = FrameBoard()
    states: list[SourceState] = []
    source = SourceConfig(name="drone", url=f"udp://127.0.0.1:{port}", open_timeout_s=10)
    supervisor = SourceSupervisor(source, board, lambda name, health: states.append(health.state))
    supervisor.start()
    wait_for(lambda: udp_port_bound(port), 10)  # listening before the drone starts sending, as on a real link
    # Paced like a live feed, at 4x: the file's video is 1 fps, so at 1x the four frames took ~4 s of stream.
    sender = subprocess.Popen(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-readrate",
            "4",
            "-i",
            str(media("kwiver_aphill_klv_10s.ts")),
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "mpegts",
            f"udp://127.0.0.1:{port}?pkt_size=1316",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    frames = []
    try:
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and (len(frames) < 4 or len(supervisor.data_packets) < 20):
            frame = board.take(0.5)
            if frame is not None:
                frames.append(frame)
    finally:
        # The supervisor first, while packets still flow: with the sender gone, its reader would wait for data
        # until open_timeout_s (10 s), longer than stop() waits.
        supervisor.stop()
        sender.terminate()
        sender.wait(10)

    assert SourceState.LIVE in states
    assert len(frames) >= 4, f"frames: {len(frames)}, sender: {sender.stderr.read().decode() if sender.stderr else ''}"
    assert (frames[0].width, frames[0].height) == (360, 240)
    assert all(f.pts is not None for f in frames[1:])
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    klv = list(supervisor.data_packets)
    assert len(klv) >= 20
    # MISB universal-set key prefix (06 0E 2B 34): these are the KLV packets, not video bytes.
    assert all(p.payload[:4] == b"\x06\x0e\x2b\x34" for p in klv)
    pts = [p.pts for p in klv if p.pts is not None]
    assert len(pts) == len(klv) and pts == sorted(pts)
    # The KLV travels with the frames: each carries the window of packets received up to it.
    carried = frames[-1].data
    assert carried and all(p.payload[:4] == b"\x06\x0e\x2b\x34" for p in carried)
    assert [p.seq for p in carried] == sorted({p.seq for p in carried})
