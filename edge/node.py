"""The running edge node: the threads that move frames and state, started and stopped in order.

It is handed its parts already built (edge/factory.py), so tests can inject any of them. Threads: one
supervisor per source (decode, reconnect), the detection workers shared by all streams (fed latest-frame-wins by
the FrameBoard, running the pipeline's detection half: one per inference the runtime can run at once), one
"track" thread that finishes every detected frame in the order it was taken (tracking, geolocation, rules,
events, sinks), a status loop, a telemetry loop, and the MQTT publisher's own network and sender threads.

Inference never waits for tracking, events or the sinks: while the track thread finishes frame n, a worker is
already inferring on frame n+1 (bounded: at most one frame per worker ahead, edge/pipeline.py InOrderHandoff).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from edge.config.node import EdgeConfig
from edge.frame import Frame
from edge.geo.locator import StreamGeolocator
from edge.metrics import EdgeMetrics
from edge.outputs.alerts import AlertSink
from edge.outputs.events import EventSink
from edge.outputs.mqtt_publisher import MqttPublisher
from edge.outputs.status import StatusReporter
from edge.outputs.video.service import LiveVideo
from edge.pipeline import InOrderHandoff, Pipeline
from edge.rules.stage import RulesStage
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceHealth, SourceSupervisor
from edge.telemetry.mavlink_reader import MavlinkReader
from edge.track.lifecycle import EventLifecycle
from smarteye.wire.messages import EndReason, SourceState, StreamStatus

log = logging.getLogger("edge.node")

IDLE_TICK_S = 0.25
SOURCE_STOP_S = 2.0  # how long a clean stop waits for all sources together (a hanging one is left behind)


@dataclass(slots=True)
class StreamParts:
    """The per-stream parts the runner drives directly (the pipeline holds the stages)."""

    supervisor: SourceSupervisor
    lifecycle: EventLifecycle
    geolocator: StreamGeolocator | None
    rules: RulesStage


class EdgeNode:
    """Runs every configured source through the pipeline until stopped."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        board: FrameBoard,
        streams: dict[str, StreamParts],
        pipeline: Pipeline,
        publisher: MqttPublisher,
        events: EventSink,
        status: StatusReporter,
        video: LiveVideo | None,
        mavlink: dict[str, MavlinkReader],
        metrics: EdgeMetrics,
        alerts: AlertSink | None = None,
        detection_workers: int | None = None,
    ) -> None:
        """`detection_workers`: frames inferred at once; None: as many as the detectors can run at once (asked at
        warm-up, Detector.parallelize: OpenVINO's parallel infer requests), 1 for every other runtime."""
        self.config, self.board, self.streams, self.pipeline = config, board, streams, pipeline
        self.publisher, self.events, self.status, self.video = publisher, events, status, video
        self.mavlink, self.metrics, self.alerts = mavlink, metrics, alerts
        self.metrics_port: int | None = None
        self._stop = threading.Event()
        self._warmed = threading.Event()
        self._take_lock = threading.Lock()  # a frame's ticket is drawn with the take: the hand-off keeps take order
        self._workers = detection_workers
        self.handoff = InOrderHandoff(max(1, detection_workers or 1))
        self._detect_threads = [self._worker(0)]  # the first warms up, then starts the others
        self._track_thread = threading.Thread(target=self._track_loop, name="track", daemon=True)
        self._status_thread = threading.Thread(target=self._status_loop, name="status", daemon=True)
        self._telemetry_thread = threading.Thread(target=self._telemetry_loop, name="telemetry", daemon=True)

    def _worker(self, index: int) -> threading.Thread:
        return threading.Thread(target=self._detect_loop, args=(index,), name=f"detect-{index}", daemon=True)

    @property
    def detection_workers(self) -> int:
        """Detection workers running (known once the first has warmed the detectors up)."""
        return len(self._detect_threads)

    @property
    def rules(self) -> dict[str, RulesStage]:
        """Each stream's rules stage: pushed rules are applied to it, status reports its version."""
        return {name: parts.rules for name, parts in self.streams.items()}

    @property
    def events_published(self) -> int:
        return self.events.published

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self.video is not None:
            self.video.start()  # first: it may refuse (a taken port) before anything else runs
        if self.config.metrics.enabled:
            self.metrics_port = self.metrics.serve(self.config.metrics.host, self.config.metrics.port)
        self.publisher.start()
        for reader in self.mavlink.values():
            reader.start()
        self._track_thread.start()
        self._detect_threads[0].start()
        for stream in self.streams.values():
            stream.supervisor.start()
        self._status_thread.start()
        if any(s.geolocator and s.geolocator.config.telemetry for s in self.streams.values()):
            self._telemetry_thread.start()

    def stop(self) -> None:
        """Stop sources, end every open event and alert, flush what can be flushed and go offline."""
        self._stop.set()
        for stream in self.streams.values():
            stream.supervisor.stop(timeout=0)  # all at once: a hanging source must not hold up the next
        deadline = time.monotonic() + SOURCE_STOP_S
        for stream in self.streams.values():
            stream.supervisor.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.board.close()
        if self._detect_threads[0].ident is not None:
            self._warmed.wait(10)  # the first worker may still be warming up and starting the others
        for thread in list(self._detect_threads):  # each ends after its current frame, which the track thread finishes
            if thread.ident is not None:
                thread.join(10)
        self.handoff.close()
        self._track_thread.join(10)
        if self.video is not None:
            self.video.stop()
        if self.alerts is not None:
            self.alerts.stop()  # clips being recorded are cut at what the stopped video gave, and still published
        for reader in self.mavlink.values():
            reader.stop()
        for name, stream in self.streams.items():
            self.events.publish(stream.lifecycle.end_all(EndReason.SHUTDOWN))
            if self.alerts is not None:
                self.alerts.publish(stream.rules.end_all(time.time()))  # no situation is left open
            self.status.publish_status(name, stopped=True)
        self.publisher.stop(timeout=6.0)
        self.metrics.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- threads ---------------------------------------------------------------------------
    def _detect_loop(self, index: int) -> None:
        """A detection worker: takes the scheduler's next frame, runs the detection half, hands it on in order."""
        if index == 0:
            try:
                self._start_workers(self._warm_up())
            finally:
                self._warmed.set()
        while not self._stop.is_set():
            with self._take_lock:
                frame = self.board.take(IDLE_TICK_S)
                if frame is None:
                    continue
                ticket = self.handoff.ticket()
            detected: Frame | None = None
            try:
                detected = self.pipeline.detect(frame)
            except Exception:
                log.exception("stream %s: frame %d could not be processed", frame.stream, frame.seq)
            finally:
                self.handoff.put(ticket, detected)  # a failed frame still gives up its place in the order

    def _track_loop(self) -> None:
        """Finishes the detected frames in take order; ends objects of stalled streams between frames. At the stop it
        finishes what the workers still hand over, until the hand-off is closed (the workers have ended)."""
        last_expiry = time.time()
        while True:
            got, frame = self.handoff.get(IDLE_TICK_S)
            if not got and self.handoff.closed:
                return
            if frame is not None:
                try:
                    self.pipeline.finish(frame)
                except Exception:
                    log.exception("stream %s: frame %d could not be processed", frame.stream, frame.seq)
            now = time.time()
            if now - last_expiry >= IDLE_TICK_S:
                last_expiry = now
                self._expire_stalled(now)

    def _start_workers(self, parallel: int) -> None:
        """The other detection workers: as configured, else one per frame the detectors can infer at once."""
        count = max(1, self._workers if self._workers is not None else parallel)
        self.handoff.widen(count)
        for index in range(1, count):
            if self._stop.is_set():
                return
            thread = self._worker(index)
            self._detect_threads.append(thread)
            thread.start()

    def _warm_up(self) -> int:
        """Each distinct detector runs once before the first frame: lazy set-up (the runtime compiling for its input,
        ultralytics' predictor) would otherwise stall the first camera frames by seconds. In the detect thread, so
        the sources connect meanwhile; frames arriving wait on the latest-frame-wins board. Returns how many frames
        the detectors can infer at once (the most any of them can)."""
        seen: set[int] = set()
        parallel = 1
        for stages in self.pipeline.stages.values():
            for stage in stages:
                if id(stage) in seen:
                    continue
                seen.add(id(stage))
                try:
                    parallelize = getattr(stage, "parallelize", None)
                    if parallelize is not None and self._workers is None:
                        parallel = max(parallel, parallelize())
                    warm_up = getattr(stage, "warm_up", None)
                    if warm_up is not None:
                        warm_up()
                except Exception:
                    log.exception("warm-up of %s failed (the first frames will be slow)", stage.name)
        return parallel

    def _expire_stalled(self, now: float) -> None:
        """End objects of streams that stopped delivering frames (they cannot be confirmed gone)."""
        for stream in self.streams.values():
            last = stream.supervisor.health.last_frame_time
            if last is not None and now - last > self.config.events.end_after_s:
                self.events.publish(stream.lifecycle.expire(now, EndReason.STREAM_LOST))

    def source_changed(self, stream: str, health: SourceHealth) -> None:
        """A source's state changed (called from its supervisor's thread)."""
        self.status.publish_status(stream)
        if self.video is not None and health.state is not SourceState.CONNECTING:
            self.video.source_state(stream, health.state is SourceState.LIVE, health.reason)

    def _status_loop(self) -> None:
        while not self._stop.wait(self.config.status_interval_s):
            for name in self.streams:
                self.status.publish_status(name)

    def _telemetry_loop(self) -> None:
        """Each drone stream's telemetry at a bounded rate (latest value wins, retained)."""
        while not self._stop.wait(self.config.telemetry_interval_s):
            try:  # the thread outlives any one bad round: telemetry of every stream depends on it
                self.status.publish_telemetry()
            except Exception:
                log.exception("telemetry round failed")

    # -- queries ---------------------------------------------------------------------------
    def stream_status(self, name: str) -> StreamStatus:
        return self.status.stream_status(name)

    def states(self) -> dict[str, SourceState]:
        return {name: s.supervisor.health.state for name, s in self.streams.items()}
