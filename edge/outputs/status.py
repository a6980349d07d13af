"""Sink of the node's state rather than of frames: each stream's retained status (source health, fps,
drops, latency) and each drone stream's telemetry (vehicle/KLV state and camera footprint)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from edge.geo.locator import StreamGeolocator
from edge.outputs.mqtt_publisher import MqttPublisher
from edge.pipeline import StreamStats
from edge.rules.stage import RulesStage
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceSupervisor
from smarteye.wire.messages import SourceState, StreamStatus, Telemetry
from smarteye.wire.topics import status_topic, telemetry_topic

log = logging.getLogger(__name__)


class StatusReporter:
    """Builds and publishes StreamStatus and Telemetry messages (retained: latest value wins)."""

    def __init__(
        self,
        node: str,
        topic_prefix: str,
        publisher: MqttPublisher,
        supervisors: Mapping[str, SourceSupervisor],
        stats: Mapping[str, StreamStats],
        board: FrameBoard,
        geolocators: Mapping[str, StreamGeolocator],
        rules: Mapping[str, RulesStage],
        on_status: Callable[[StreamStatus], None] | None = None,
    ) -> None:
        self.node, self.prefix, self.publisher = node, topic_prefix, publisher
        self.supervisors, self.stats, self.board, self.geolocators = supervisors, stats, board, geolocators
        self.rules, self.on_status = rules, on_status

    def stream_status(self, name: str) -> StreamStatus:
        supervisor, stats = self.supervisors[name], self.stats[name]
        health, source = supervisor.health, supervisor.config
        now = time.time()
        recent = stats.recent(now)
        latency = stats.median_latency_s() if recent else None
        return StreamStatus(
            node=self.node,
            stream=name,
            state=health.state,
            reason=health.reason,
            url=source.safe_url,
            source_kind=source.resolved_kind.value,
            width=health.width,
            height=health.height,
            fps=round(supervisor.current_fps(), 2),
            processed_fps=round(stats.fps(), 2) if recent else 0.0,
            frames=health.frames,
            processed=stats.processed,
            dropped=self.board.dropped.get(name, 0),
            reconnects=health.reconnects,
            latency_ms=round(latency * 1000, 1) if latency is not None else None,
            last_frame_time=health.last_frame_time,
            rules_version=self.rules[name].version if name in self.rules else None,
            rules_error=self.rules[name].error if name in self.rules else None,
            time=now,
        )

    def publish_status(self, name: str, *, stopped: bool = False) -> None:
        """The stream's status now (also called from the MQTT thread when pushed rules change it).
        `stopped`: the node is stopping; the retained status then says so whatever state a source that
        has not ended yet (hanging in a read or an open) was left in: never `live` after a clean stop."""
        status = self.stream_status(name)
        if stopped and status.state is not SourceState.STOPPED:
            status = status.model_copy(update={"state": SourceState.STOPPED, "reason": "node stopped",
                                               "processed_fps": 0.0, "fps": 0.0})  # fmt: skip
        self.publisher.publish_state(status_topic(self.prefix, self.node, name), status.model_dump_json().encode())
        if self.on_status is not None:
            self.on_status(status)

    def publish_telemetry(self) -> None:
        """Each drone stream's latest telemetry, if it has any yet; one stream's failure never stops the others'."""
        for name, locator in self.geolocators.items():
            if locator.config.telemetry is None:
                continue
            try:
                self._publish_telemetry(name, locator)
            except Exception:
                log.exception("stream %s: telemetry could not be published", name)

    def _publish_telemetry(self, name: str, locator: StreamGeolocator) -> None:
        """One stream's latest telemetry (retained), if it has any yet."""
        vehicle, sensor = locator.latest_telemetry()
        if vehicle is None and sensor is None:
            return
        health = self.supervisors[name].health
        footprint = locator.footprint(health.width, health.height) if health.width and health.height else None
        message = Telemetry(
            node=self.node, stream=name, source=locator.config.telemetry.source.value,
            geo_status=locator.last_status, vehicle=vehicle, sensor=sensor, footprint=footprint, time=time.time(),
        )  # fmt: skip
        self.publisher.publish_state(telemetry_topic(self.prefix, self.node, name), message.model_dump_json().encode())
