"""Latest-frame-wins hand-off between a source and detection: at most one pending frame per
stream, so latency cannot grow when detection is slower than the camera."""

from __future__ import annotations

import threading
import time

from edge.frame import Frame
from edge.source.schedule import DetectionScheduler


class FrameBoard:
    """One pending-frame slot per stream, sharing one condition so a single detection loop can
    wait for a frame from any stream. Which stream goes next is the scheduler's choice
    (edge/source/schedule.py: rate caps, a floor against starvation, priority, weighted fairness);
    with the default scheduler every stream has the same priority and weight, i.e. round-robin."""

    def __init__(self, scheduler: DetectionScheduler | None = None) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, Frame] = {}  # insertion order = first seen, the scheduler's tie-breaker
        self.scheduler = scheduler or DetectionScheduler()
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
                self.scheduler.dropped(frame.stream, time.monotonic())
            if frame.stream not in self.dropped:
                self.dropped[frame.stream] = 0
                self.scheduler.stream(frame.stream)  # first sight fixes the stream's place among equals
            self._pending[frame.stream] = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        """The pending frame of the stream the scheduler picks, waiting up to `timeout` for one (a rate-capped
        stream's frame waits on the board until its slot, still replaced by newer ones)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                stream = self.scheduler.pick(self._pending, now)
                if stream is not None:
                    self.scheduler.served(stream, now)
                    frame = self._pending.pop(stream)
                    self._cond.notify_all()
                    return frame
                remaining = deadline - now
                if self._closed or remaining <= 0:
                    return None
                ready = self.scheduler.next_ready(self._pending, now)
                self._cond.wait(remaining if ready is None else min(remaining, max(ready - now, 0.0005)))

    def discard(self, stream: str) -> None:
        """Forget a stream's pending frame (its source went away)."""
        with self._cond:
            self._pending.pop(stream, None)
            self.scheduler.idle(stream)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
