"""The simulated site camera loops its file: a real GStreamer RTSP server read back with PyAV for more than two
passes of the file (about 4 s of real-time video, hence here rather than with tests/smarteye/sim)."""

from __future__ import annotations

import itertools

from smarteye.sim.rtsp_server import RtspServer
from tests.support.rtsp_reading import SHORT, frame_count, read_frames


def test_loop_plays_on_past_end_of_file(gst_available: None, media) -> None:
    file_frames = frame_count(media(SHORT))
    wanted = 2 * file_frames + 15
    with RtspServer({"/short": media(SHORT)}, loop=True) as server:
        frames = read_frames(server.url("/short"), wanted)
    assert len(frames) == wanted, "stream ended instead of looping"
    pts = [p for _, _, p in frames if p is not None]
    assert len(pts) >= wanted - 2  # FFmpeg may leave the very first frame without pts
    # Never backwards across the loop points. (Not strictly increasing: this field-coded
    # source has one frame pair with equal timestamps per pass.)
    assert all(b >= a for a, b in itertools.pairwise(pts)), pts
    assert sum(b > a for a, b in itertools.pairwise(pts)) >= len(pts) - 1 - 3
    span = (pts[-1] - pts[0]) / 90_000  # RTP H.264 clock
    assert span > 2 * file_frames / 30.0  # more than two passes of a ~30 fps, 1.6 s file
