"""A decoded video frame stamped with when it was captured, carried through every stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class Frame:
    """One frame of one stream.

    `capture_time` is the wall clock (epoch seconds) when the frame's packet was received, so the
    latency of any event it causes can be measured end to end; `pts` is the stream's own time.
    The picture is kept as the decoder produced it and converted to BGR only when a consumer asks,
    so frames that latest-frame-wins drops never pay for the conversion.
    """

    stream: str
    seq: int
    capture_time: float
    pts: float | None
    width: int
    height: int
    _decoded: Any = field(default=None, repr=False)
    _bgr: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_bgr(cls, stream: str, seq: int, capture_time: float, pts: float | None, image: np.ndarray) -> Frame:
        height, width = image.shape[:2]
        return cls(stream, seq, capture_time, pts, width, height, None, image)

    @classmethod
    def from_av(cls, stream: str, seq: int, capture_time: float, pts: float | None, av_frame: Any) -> Frame:
        return cls(stream, seq, capture_time, pts, av_frame.width, av_frame.height, av_frame, None)

    def bgr(self) -> np.ndarray:
        """The picture as a BGR array (converted once, on first use)."""
        if self._bgr is None:
            self._bgr = self._decoded.to_ndarray(format="bgr24")
            self._decoded = None
        return self._bgr
