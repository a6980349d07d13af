"""Reading an RTSP camera with PyAV as the edge does, from a real GStreamer RTSP server."""

from __future__ import annotations

import time

from edge.config import SourceConfig
from edge.frame import DataWindow
from edge.source.reader import AvReader
from smarteye.sim.rtsp_server import RtspServer


def test_a_camera_with_a_long_gop_gives_its_first_frame_at_once(gst_available: None, media) -> None:
    """A camera sending one keyframe every 25 s (10 fps, GOP 250): the first picture comes within seconds of
    connecting, stamped close to its arrival. Opened with `fflags=nobuffer`, the reader threw away what it read
    while probing, the first keyframe with it, and decoded nothing until the next one, 25 s later."""
    with RtspServer({"/cam": media("vtest.avi")}, loop=True, keyframe_interval=250) as server:
        reader = AvReader(SourceConfig(name="cam", url=server.url("/cam"), open_timeout_s=10), DataWindow(8))
        started = time.time()
        reader.open()
        try:
            frames = reader.frames("cam", 0)
            first = next(frames)
            waited = time.time() - started
            later = [next(frames) for _ in range(20)]
        finally:
            reader.close()
    assert waited < 5.0, f"first frame {waited:.1f} s after connecting"
    assert first.capture_time - started < 5.0
    # After the few frames read while probing, frames arrive at the camera's pace, not in a burst.
    times = [f.capture_time for f in later]
    assert times[-1] - times[0] > 1.0, times
