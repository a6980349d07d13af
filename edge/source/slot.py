"""Latest-frame-wins hand-off between a source and detection: at most one pending frame per
stream, so latency cannot grow when detection is slower than the camera."""

from __future__ import annotations

import threading

from edge.frame import Frame


class FrameBoard:
    """One pending-frame slot per stream, sharing one condition so a single detection loop can
    wait for a frame from any stream and serve the streams fairly (round-robin over the streams
    that have a frame, so a fast camera cannot starve a slow one)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, Frame] = {}
        self._order: list[str] = []  # streams in the order first seen; served round-robin
        self._next = 0
        self.dropped: dict[str, int] = {}
        self._closed = False

    def put(self, frame: Frame, block: bool = False, stop: threading.Event | None = None) -> None:
        """Offer a frame. Live sources replace the pending frame (counting a drop); `block=True`
        (offline file analysis) waits until detection has taken the previous one instead."""
        with self._cond:
            if block:
                while frame.stream in self._pending and not self._closed and not (stop and stop.is_set()):
                    self._cond.wait(0.2)
            elif frame.stream in self._pending:
                self.dropped[frame.stream] = self.dropped.get(frame.stream, 0) + 1
            if frame.stream not in self.dropped:
                self.dropped[frame.stream] = 0
                self._order.append(frame.stream)
            self._pending[frame.stream] = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        """The next stream's pending frame in round-robin order, waiting up to `timeout` for one."""
        with self._cond:
            if not self._pending and not self._closed:
                self._cond.wait(timeout)
            if not self._pending:
                return None
            count = len(self._order)
            for step in range(count):
                stream = self._order[(self._next + step) % count]
                if stream in self._pending:
                    self._next = (self._next + step + 1) % count
                    frame = self._pending.pop(stream)
                    self._cond.notify_all()
                    return frame
            return None

    def discard(self, stream: str) -> None:
        """Forget a stream's pending frame (its source went away)."""
        with self._cond:
            self._pending.pop(stream, None)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
