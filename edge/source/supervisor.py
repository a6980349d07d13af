"""One supervisor thread per source: open, read, hand frames to detection, and on any error or
end-of-stream reconnect with capped exponential backoff. A dead or slow source only ever
affects its own thread."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.config.source import SourceConfig, SourceKind
from edge.frame import DataWindow, Frame
from edge.source.reader import SourceEnded, SourceError, make_reader
from edge.source.slot import FrameBoard
from smarteye.config.urls import redact_text
from smarteye.wire.messages import SourceState

log = logging.getLogger("edge.source")

KLV_BUFFER_PACKETS = 256  # ~8 s of 30 Hz KLV: more than any frame is matched across


@dataclass(slots=True)
class SourceHealth:
    """What the supervisor knows about its source right now."""

    state: SourceState = SourceState.CONNECTING
    reason: str | None = None
    frames: int = 0
    reconnects: int = 0
    width: int | None = None
    height: int | None = None
    last_frame_time: float | None = None
    fps: float = 0.0


class SourceSupervisor:
    """Keeps one source alive and feeds its frames to the shared FrameBoard."""

    def __init__(
        self,
        config: SourceConfig,
        board: FrameBoard,
        on_state: Callable[[str, SourceHealth], None],
    ) -> None:
        self.config = config
        self.board = board
        self.on_state = on_state
        self.on_frame: Callable[[Frame], None] | None = None
        """Sees every frame before the board (the live video, at the camera's rate); must not block."""
        self.health = SourceHealth()
        self._tap_failed = False
        # KLV and other data packets with their pts, bounded; each frame carries a snapshot of it.
        self.data_packets = DataWindow(KLV_BUFFER_PACKETS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source-{config.name}", daemon=True)
        self._fps_window: collections.deque[float] = collections.deque(maxlen=60)

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _set_state(self, state: SourceState, reason: str | None = None) -> None:
        changed = (state, reason) != (self.health.state, self.health.reason)
        self.health.state = state
        self.health.reason = reason
        if changed:
            self.on_state(self.name, self.health)

    def _run(self) -> None:
        backoff = self.config.reconnect
        delay = backoff.initial_s
        failures = 0
        seq = 0
        self._set_state(SourceState.CONNECTING)
        while not self._stop.is_set():
            reader = make_reader(self.config, self.data_packets)
            got_frames = False
            try:
                reader.open()
                for frame in reader.frames(self.name, seq):
                    seq = frame.seq
                    if not got_frames:
                        got_frames = True
                        failures, delay = 0, backoff.initial_s
                        self.health.width, self.health.height = frame.width, frame.height
                        log.info(
                            "source %s: live (%dx%d) %s", self.name, frame.width, frame.height, self.config.safe_url
                        )
                        self._set_state(SourceState.LIVE)
                    self._count_frame(frame.capture_time)
                    self._tap(frame)
                    self.board.put(frame, block=not self.config.realtime and self._is_file, stop=self._stop)
                    if self._stop.is_set():
                        break
                else:
                    if self._is_file and not self.config.loop:
                        raise SourceEnded
                    if self._is_file:
                        continue  # loop: reopen from the start at once
                    raise SourceError(f"{self.config.safe_url}: stream ended")
            except SourceEnded:
                log.info("source %s: end of file %s", self.name, self.config.safe_url)
                self._set_state(SourceState.FINISHED, "end of file")
                break
            except SourceError as error:
                reason = str(error)
            except Exception as error:
                reason = redact_text(f"{self.config.safe_url}: {type(error).__name__}: {error}", self.config.url)
            else:
                continue
            finally:
                reader.close()
            if self._stop.is_set():
                break
            self.board.discard(self.name)
            if self._is_file and not got_frames:
                # A missing or corrupt file will not heal by retrying.
                log.error("source %s: failed: %s", self.name, reason)
                self._set_state(SourceState.FAILED, reason)
                break
            failures += 1
            if backoff.max_attempts is not None and failures >= backoff.max_attempts:
                log.error("source %s: failed after %d attempts: %s", self.name, failures, reason)
                self._set_state(SourceState.FAILED, reason)
                break
            self.health.reconnects += 1
            log.warning("source %s: reconnecting in %.1fs: %s", self.name, delay, reason)
            self._set_state(SourceState.RECONNECTING, reason)
            if self._stop.wait(delay):
                break
            delay = min(delay * backoff.factor, backoff.max_s)
        if self._stop.is_set():
            self._set_state(SourceState.STOPPED)

    def _tap(self, frame: Frame) -> None:
        """Every frame to `on_frame`; its failure is logged once and never stops the frames to detection."""
        if self.on_frame is None:
            return
        try:
            self.on_frame(frame)
        except Exception:
            if not self._tap_failed:
                self._tap_failed = True
                log.exception("source %s: the live video could not take a frame", self.name)

    @property
    def _is_file(self) -> bool:
        return self.config.resolved_kind is SourceKind.FILE

    def _count_frame(self, capture_time: float) -> None:
        self.health.frames += 1
        self.health.last_frame_time = capture_time
        window = self._fps_window
        window.append(capture_time)
        if len(window) >= 2 and window[-1] > window[0]:
            self.health.fps = (len(window) - 1) / (window[-1] - window[0])

    def current_fps(self) -> float:
        """Frames/s over the recent window, or 0 when frames stopped arriving."""
        last = self.health.last_frame_time
        if last is None or time.time() - last > 2.0:
            return 0.0
        return self.health.fps
