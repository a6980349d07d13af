"""The edge pipeline, top to bottom. A source's frames reach detection latest-frame-wins (FrameBoard);
each frame then passes its stream's stages in order, and the finished record goes to every sink:

    source ─► board ─► convert ─► inference ─► tracking ─► [geolocation] ─► rules ─► events ─► sinks
                                                                                    ├─ MQTT events + snapshots
                                                                                    ├─ MQTT alerts + evidence
                                                                                    └─ live video (encode once)

A stage takes the frame record and returns it with its part added (edge/frame.py); a sink reads the record.
Each stream runs its own detector (the node's or its override; streams with the same model share the loaded
runtime, edge/detect/pool.py); tracking, geolocation, rules and events keep per-stream state.
"""

from __future__ import annotations

import collections
import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from edge.frame import Frame
from edge.metrics import EdgeMetrics

log = logging.getLogger("edge.pipeline")

WINDOW = 60  # frames over which a stream's processed fps and latency are reported


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
    """Runs one frame through its stream's stages, then hands the record to every sink."""

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

    def process(self, frame: Frame) -> Frame:
        """The whole path of one frame; a stage's error skips the frame, a sink's error only that sink."""
        frame.timings["wait"] = max(0.0, time.time() - frame.capture_time - frame.timings.get("decode", 0.0))
        for stage in self.stages[frame.stream]:
            started = time.perf_counter()
            stage.process(frame)
            frame.timings[stage.name] = time.perf_counter() - started
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
