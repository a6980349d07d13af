"""A source's real frame rate, from its frames' own timestamps, for the encoder's declared rate.

The rate goes into the H.264 stream (SPS timing) and the encoder's rate control: players that read MPEG-TS
(ffplay, VLC, QGroundControl) take it as the frame duration, and a wrong one makes them buffer for tens of seconds
before the first picture. The stream's pts (RTP or container time) is exact where capture times jitter with the
network; frames dropped on the way are accounted for by the sequence numbers, so a skipped frame does not halve it.
"""

from __future__ import annotations

import collections
import statistics

WINDOW = 30  # frame intervals in the median
MIN_INTERVALS = 2  # intervals needed before the rate is trusted
MIN_FPS, MAX_FPS = 0.5, 240.0  # a "rate" outside these is a timestamp glitch (pts jump, reconnect), not a camera


class SourceRate:
    """Median frame interval of one source over its recent frames (fed by the source thread only)."""

    def __init__(self) -> None:
        self._intervals: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._last: tuple[int, float] | None = None

    def observe(self, seq: int, pts: float | None, capture_time: float) -> None:
        """One source frame: its sequence number and its stream time (capture time when the source has none)."""
        stamp = pts if pts is not None else capture_time
        last = self._last
        self._last = (seq, stamp)
        if last is None or seq <= last[0]:
            return
        interval = (stamp - last[1]) / (seq - last[0])
        if 1 / MAX_FPS <= interval <= 1 / MIN_FPS:
            self._intervals.append(interval)

    def reset(self) -> None:
        """The source restarted (its pts restart too, and the rate may differ)."""
        self._intervals.clear()
        self._last = None

    @property
    def fps(self) -> float | None:
        """Frames per second, or None until a few intervals were seen."""
        if len(self._intervals) < MIN_INTERVALS:
            return None
        return 1.0 / statistics.median(self._intervals)
