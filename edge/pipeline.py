"""The edge pipeline, top to bottom. A source's frames reach detection latest-frame-wins (FrameBoard);
each frame then passes its stream's stages in order, and the finished record goes to every sink:

    source ─► board ─► convert ─► inference ─► tracking ─► [geolocation] ─► rules ─► events ─► sinks
                                                                                    ├─ MQTT events + snapshots
                                                                                    ├─ MQTT alerts + evidence
                                                                                    └─ live video (encode once)

A stage takes the frame record and returns it with its part added (edge/frame.py); a sink reads the record.
Each stream runs its own detector (the node's or its override; streams with the same model share the loaded
runtime, edge/detect/pool.py); tracking, geolocation, rules and events keep per-stream state.

The path runs in two halves on different threads (edge/node.py) so inference never waits for what follows it:
`detect` (convert + inference, on one or more detection workers) and `finish` (tracking onwards and the sinks, on
one thread, frames in the order detection took them: trackers need each stream's frames in order). Between them
a bounded in-order hand-off (InOrderHandoff): a slow `finish` holds detection back instead of queueing frames.
"""

from __future__ import annotations

import collections
import logging
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from edge.frame import Frame
from edge.metrics import EdgeMetrics

log = logging.getLogger("edge.pipeline")

WINDOW = 60  # frames over which a stream's processed fps and latency are reported
DETECTION_STAGES = frozenset({"convert", "inference"})  # the leading stages that run in `Pipeline.detect`


class Stage(Protocol):
    """One step of the frame path: adds its result to the frame record."""

    name: str

    def process(self, frame: Frame) -> Frame: ...


class Sink(Protocol):
    """An output fed with every finished frame record."""

    name: str

    def consume(self, frame: Frame) -> None: ...


class Convert:
    """First stage: the decoder's picture as BGR, converted once for every stage after it."""

    name = "convert"

    def process(self, frame: Frame) -> Frame:
        frame.bgr()
        return frame


def stream_stages(
    detector: Stage, tracker: Stage, geolocator: Stage | None, rules: Stage, lifecycle: Stage
) -> list[Stage]:
    """The stages of one stream, in the order a frame passes them: rules after geolocation (geofences need the
    ground positions) and before events (which report the zones each object is in)."""
    located = [geolocator] if geolocator is not None else []
    return [Convert(), detector, tracker, *located, rules, lifecycle]


class StreamStats:
    """How fast and how late one stream's frames come out of the pipeline (for status and the overlay)."""

    def __init__(self) -> None:
        self.done_times: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self.latencies: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self.processed = 0

    def record(self, done: float, capture_time: float) -> None:
        self.done_times.append(done)
        self.latencies.append(done - capture_time)
        self.processed += 1

    def fps(self) -> float:
        """Frames per second over the recent window."""
        times = self.done_times
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return (len(times) - 1) / span if span > 0 else 0.0

    def recent(self, now: float, within_s: float = 2.0) -> bool:
        return bool(self.done_times) and now - self.done_times[-1] < within_s

    def median_latency_s(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None


class Pipeline:
    """Runs one frame through its stream's stages, then hands the record to every sink.

    `detect` runs the leading detection stages (convert, inference), `finish` the rest and the sinks; `process`
    runs both, one after the other."""

    def __init__(
        self,
        stages: Mapping[str, Sequence[Stage]],
        sinks: Sequence[Sink],
        metrics: EdgeMetrics | None = None,
        stats: Mapping[str, StreamStats] | None = None,
    ) -> None:
        """`stats`: the streams' rate records when a sink also reads them (the live video's overlay)."""
        self.stages = {stream: list(chain) for stream, chain in stages.items()}
        self.sinks = list(sinks)
        self.metrics = metrics
        self.stats = dict(stats) if stats is not None else {stream: StreamStats() for stream in self.stages}
        self._split = {stream: _detection_prefix(chain) for stream, chain in self.stages.items()}

    def process(self, frame: Frame) -> Frame:
        """The whole path of one frame; a stage's error skips the frame, a sink's error only that sink."""
        return self.finish(self.detect(frame))

    def detect(self, frame: Frame) -> Frame:
        """The detection half (convert, inference); raises what a stage raises (the frame is then skipped)."""
        frame.timings["wait"] = max(0.0, time.time() - frame.capture_time - frame.timings.get("decode", 0.0))
        self._run(frame, self.stages[frame.stream][: self._split[frame.stream]])
        frame.detected_at = time.perf_counter()
        return frame

    def finish(self, frame: Frame) -> Frame:
        """Tracking onwards and the sinks; a stage's error skips the frame, a sink's error only that sink."""
        if frame.detected_at is not None:
            frame.timings["handoff"] = time.perf_counter() - frame.detected_at  # waiting between the two halves
        self._run(frame, self.stages[frame.stream][self._split[frame.stream] :])
        self.stats[frame.stream].record(time.time(), frame.capture_time)
        for sink in self.sinks:
            started = time.perf_counter()
            try:
                sink.consume(frame)
            except Exception:
                log.exception("stream %s: sink %s failed on frame %d", frame.stream, sink.name, frame.seq)
            frame.timings[sink.name] = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.observe_frame(frame)
        return frame

    @staticmethod
    def _run(frame: Frame, stages: Sequence[Stage]) -> None:
        for stage in stages:
            started = time.perf_counter()
            stage.process(frame)
            frame.timings[stage.name] = time.perf_counter() - started


def _detection_prefix(chain: Sequence[Stage]) -> int:
    """How many leading stages of a chain are detection stages (run by `Pipeline.detect`)."""
    count = 0
    while count < len(chain) and chain[count].name in DETECTION_STAGES:
        count += 1
    return count


class InOrderHandoff:
    """Frames from the detection workers to the one thread that finishes them, in the order detection took them.

    Each frame gets a ticket when it is taken from the board (`ticket`, under the caller's take lock); a worker
    `put`s its result under that ticket (None: the frame failed, its place is skipped) and `get` returns the results
    in ticket order. Bounded: a ticket more than `capacity` ahead of the next one out waits, so a slow finishing
    thread holds detection back (the board then drops, latest wins) instead of growing a queue."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._cond = threading.Condition()
        self._ready: dict[int, Frame | None] = {}
        self._issued = 0
        self._next = 0
        self._closed = False

    def widen(self, capacity: int) -> None:
        """Allow `capacity` results ahead (more detection workers started); never narrows."""
        with self._cond:
            self.capacity = max(self.capacity, capacity)
            self._cond.notify_all()

    def ticket(self) -> int:
        with self._cond:
            self._issued += 1
            return self._issued - 1

    def put(self, ticket: int, frame: Frame | None) -> None:
        """The result for `ticket`; waits while it is `capacity` or more ahead of the next one out."""
        with self._cond:
            while ticket - self._next >= self.capacity and not self._closed:
                self._cond.wait()
            self._ready[ticket] = frame
            self._cond.notify_all()

    def get(self, timeout: float) -> tuple[bool, Frame | None]:
        """(True, result) of the next ticket in order, or (False, None) when none is ready within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next not in self._ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False, None
                self._cond.wait(remaining)
            frame = self._ready.pop(self._next)
            self._next += 1
            self._cond.notify_all()
            return True, frame

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        """Tickets issued and not yet taken out in order."""
        with self._cond:
            return self._issued - self._next

    def close(self) -> None:
        """Release every waiting `put` and `get` (the node is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
