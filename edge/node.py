"""The edge node: sources → detection → tracking → event lifecycle → MQTT, assembled here.

Threads: one supervisor per source (decode, reconnect), one detection loop shared by all streams
(fed latest-frame-wins by the FrameBoard), and the MQTT publisher's own network and sender threads.
"""

from __future__ import annotations

import collections
import logging
import statistics
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from edge.config.geo import TelemetrySource
from edge.config.node import EdgeConfig
from edge.config.source import SourceConfig
from edge.detect.detector import Detector
from edge.frame import Frame
from edge.geo.locator import StreamGeolocator
from edge.outputs.mqtt_publisher import MqttPublisher
from edge.outputs.video.service import LiveVideo
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceHealth, SourceSupervisor
from edge.telemetry.mavlink_reader import MavlinkReader
from edge.track.lifecycle import EventLifecycle
from edge.track.tracker import StreamTracker
from smarteye.wire.messages import (
    DetectionEvent,
    EndReason,
    EventType,
    NodeAvailability,
    SourceState,
    StreamStatus,
    Telemetry,
)
from smarteye.wire.topics import availability_topic, events_topic, snapshot_topic, status_topic, telemetry_topic

log = logging.getLogger("edge.node")

IDLE_TICK_S = 0.25
LATENCY_WINDOW = 50


class _Stream:
    """Per-stream state of the detection loop."""

    def __init__(
        self,
        supervisor: SourceSupervisor,
        tracker: StreamTracker,
        lifecycle: EventLifecycle,
        geolocator: StreamGeolocator | None,
    ) -> None:
        self.supervisor = supervisor
        self.tracker = tracker
        self.lifecycle = lifecycle
        self.geolocator = geolocator
        self.processed: collections.deque[float] = collections.deque(maxlen=60)
        self.frames_processed = 0
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)


class EdgeNode:
    """Runs every configured source through detection, tracking and events until stopped."""

    def __init__(
        self,
        config: EdgeConfig,
        detector: Detector | None = None,
        on_event: Callable[[DetectionEvent], None] | None = None,
        on_status: Callable[[StreamStatus], None] | None = None,
    ) -> None:
        self.config = config
        self.detector = detector or Detector(config.detector)
        self.on_event = on_event
        self.on_status = on_status
        self.board = FrameBoard()
        prefix = config.mqtt.topic_prefix
        self._availability_topic = availability_topic(prefix, config.node)
        self.publisher = MqttPublisher(
            config.mqtt,
            client_id=config.mqtt.client_id or f"smarteye-edge-{config.node}",
            availability_topic=self._availability_topic,
            spool_name=f"edge-{config.node}",
            availability_payload=self._availability,
        )
        self.streams: dict[str, _Stream] = {}
        self.mavlink: dict[str, MavlinkReader] = {}  # one reader per link, shared by the cameras on it
        for source in config.sources:
            if not source.enabled:
                continue
            supervisor = SourceSupervisor(source, self.board, self._state_changed)
            lifecycle = EventLifecycle(config.node, source.name, self.detector.name, self.detector.names, config.events)
            geolocator = self._geolocator(source, supervisor)
            self.streams[source.name] = _Stream(supervisor, StreamTracker(config.tracker), lifecycle, geolocator)
        self.video = (
            LiveVideo(config.video, config.node, list(self.streams), self.detector.names)
            if config.video.enabled
            else None
        )
        self.events_published = 0
        self._stop = threading.Event()
        self._detect_thread = threading.Thread(target=self._detect_loop, name="detect", daemon=True)
        self._status_thread = threading.Thread(target=self._status_loop, name="status", daemon=True)
        self._telemetry_thread = threading.Thread(target=self._telemetry_loop, name="telemetry", daemon=True)

    def _geolocator(self, source: SourceConfig, supervisor: SourceSupervisor) -> StreamGeolocator | None:
        geo = source.geo
        if geo is None:
            return None
        if geo.telemetry is None or geo.telemetry.source is TelemetrySource.KLV:
            return StreamGeolocator(geo, data_packets=supervisor.data_packets)
        url = geo.telemetry.mavlink_url
        assert url is not None
        if url not in self.mavlink:
            self.mavlink[url] = MavlinkReader(url, stale_after_s=geo.telemetry.stale_after_s)
        return StreamGeolocator(geo, mavlink=self.mavlink[url])

    def _availability(self, state: str) -> bytes:
        """`online` carries when it was said; `offline` may be the broker-sent last will, so no time."""
        stamp = time.time() if state == "online" else None
        return NodeAvailability(node=self.config.node, state=state, time=stamp).model_dump_json().encode()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self.video is not None:
            self.video.start()  # first: it may refuse (a taken port) before anything else runs
        self.publisher.start()
        for reader in self.mavlink.values():
            reader.start()
        self._detect_thread.start()
        for stream in self.streams.values():
            stream.supervisor.start()
        self._status_thread.start()
        if any(stream.geolocator and stream.geolocator.config.telemetry for stream in self.streams.values()):
            self._telemetry_thread.start()

    def stop(self) -> None:
        """Stop sources, end every open event, flush what can be flushed and go offline."""
        self._stop.set()
        for stream in self.streams.values():
            stream.supervisor.stop()
        self.board.close()
        self._detect_thread.join(10)
        if self.video is not None:
            self.video.stop()
        for reader in self.mavlink.values():
            reader.stop()
        for stream in self.streams.values():
            self._publish_events(stream.lifecycle.end_all(EndReason.SHUTDOWN))
            self._publish_status(stream.supervisor.name)
        self.publisher.stop(timeout=6.0)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- detection loop --------------------------------------------------------------------
    def _detect_loop(self) -> None:
        last_expiry = time.time()
        while not self._stop.is_set():
            frame = self.board.take(IDLE_TICK_S)
            if frame is not None:
                try:
                    self._process(frame)
                except Exception:
                    log.exception("stream %s: frame %d could not be processed", frame.stream, frame.seq)
            now = time.time()
            if now - last_expiry >= IDLE_TICK_S:
                last_expiry = now
                self._expire_stalled(now)

    def _process(self, frame: Frame) -> None:
        stream = self.streams[frame.stream]
        image = frame.bgr()
        detections = self.detector.detect(image)
        tracks = stream.tracker.update(detections, image)
        geo, geo_status = stream.geolocator.locate(frame, tracks) if stream.geolocator else (None, None)
        detect_time = time.time()
        stream.processed.append(detect_time)
        stream.frames_processed += 1
        stream.latencies.append(detect_time - frame.capture_time)
        events = stream.lifecycle.observe(frame, tracks, detect_time, geo, geo_status)
        self._publish_events(events)
        confirmed = [e for e in events if e.type is EventType.NEW]
        if confirmed and self.config.snapshots.enabled:
            jpeg = self._snapshot(image)  # one encode per frame, however many objects it confirmed
            for event in confirmed:
                topic = snapshot_topic(self.config.mqtt.topic_prefix, self.config.node, event.stream, event.event_id)
                self.publisher.publish_event(topic, jpeg)
        if self.video is not None:  # last: it draws on the picture, which the snapshot must not show
            self.video.submit(frame.stream, image, tracks, frame.capture_time, _rate(stream.processed))

    def _snapshot(self, image: np.ndarray) -> bytes:
        """The frame that confirmed objects, downscaled and JPEG-encoded for the spool."""
        settings = self.config.snapshots
        height, width = image.shape[:2]
        scale = min(1.0, settings.max_width / width)
        if scale < 1.0:
            image = cv2.resize(image, (settings.max_width, round(height * scale)), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, settings.quality])
        if not ok:
            raise ValueError("JPEG encoding of the snapshot failed")
        return jpeg.tobytes()

    def _expire_stalled(self, now: float) -> None:
        """End objects of streams that stopped delivering frames (they cannot be confirmed gone)."""
        for stream in self.streams.values():
            last = stream.supervisor.health.last_frame_time
            if last is not None and now - last > self.config.events.end_after_s:
                self._publish_events(stream.lifecycle.expire(now, EndReason.STREAM_LOST))

    def _publish_events(self, events: list[DetectionEvent]) -> None:
        prefix, node = self.config.mqtt.topic_prefix, self.config.node
        for event in events:
            self.publisher.publish_event(events_topic(prefix, node, event.stream), event.model_dump_json().encode())
            self.events_published += 1
            if self.on_event is not None:
                self.on_event(event)

    # -- status ----------------------------------------------------------------------------
    def _state_changed(self, stream: str, health: SourceHealth) -> None:
        self._publish_status(stream)
        if self.video is not None and health.state is not SourceState.CONNECTING:
            self.video.source_state(stream, health.state is SourceState.LIVE, health.reason)

    def _status_loop(self) -> None:
        while not self._stop.wait(self.config.status_interval_s):
            for name in self.streams:
                self._publish_status(name)

    def _telemetry_loop(self) -> None:
        """Publish each drone stream's telemetry at a bounded rate (latest value wins, retained)."""
        prefix, node = self.config.mqtt.topic_prefix, self.config.node
        while not self._stop.wait(self.config.telemetry_interval_s):
            for name, stream in self.streams.items():
                locator = stream.geolocator
                if locator is None or locator.config.telemetry is None:
                    continue
                vehicle, sensor = locator.latest_telemetry()
                if vehicle is None and sensor is None:
                    continue
                health = stream.supervisor.health
                footprint = locator.footprint(health.width, health.height) if health.width and health.height else None
                message = Telemetry(
                    node=node, stream=name, source=locator.config.telemetry.source.value,
                    geo_status=locator.last_status, vehicle=vehicle, sensor=sensor, footprint=footprint,
                    time=time.time(),
                )  # fmt: skip
                self.publisher.publish_state(telemetry_topic(prefix, node, name), message.model_dump_json().encode())

    def stream_status(self, name: str) -> StreamStatus:
        stream = self.streams[name]
        health = stream.supervisor.health
        source = stream.supervisor.config
        processed = stream.processed
        recent = bool(processed) and time.time() - processed[-1] < 2.0
        processed_fps = _rate(processed) if recent else 0.0
        latency = statistics.median(stream.latencies) * 1000 if stream.latencies and recent else None
        return StreamStatus(
            node=self.config.node,
            stream=name,
            state=health.state,
            reason=health.reason,
            url=source.safe_url,
            source_kind=source.resolved_kind.value,
            width=health.width,
            height=health.height,
            fps=round(stream.supervisor.current_fps(), 2),
            processed_fps=round(processed_fps, 2),
            frames=health.frames,
            processed=stream.frames_processed,
            dropped=self.board.dropped.get(name, 0),
            reconnects=health.reconnects,
            latency_ms=round(latency, 1) if latency is not None else None,
            last_frame_time=health.last_frame_time,
            time=time.time(),
        )

    def _publish_status(self, name: str) -> None:
        status = self.stream_status(name)
        topic = status_topic(self.config.mqtt.topic_prefix, self.config.node, name)
        self.publisher.publish_state(topic, status.model_dump_json().encode())
        if self.on_status is not None:
            self.on_status(status)

    def states(self) -> dict[str, SourceState]:
        return {name: s.supervisor.health.state for name, s in self.streams.items()}


def _rate(times: collections.deque[float]) -> float:
    """Events per second over a window of their times."""
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 else 0.0
