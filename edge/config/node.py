"""The whole configuration of one edge node, and loading it with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.config.detector import DetectorConfig
from edge.config.source import SourceConfig
from edge.config.tracking import EventsConfig, TrackerConfig
from edge.config.video import VideoConfig
from smarteye.config.loading import load_model, parse_model
from smarteye.config.mqtt import MqttConfig
from smarteye.strict import StrictModel
from smarteye.wire.names import repeated, valid_name


class SnapshotConfig(StrictModel):
    """A JPEG of the frame that confirmed each object, sent with its `new` event."""

    enabled: bool = Field(True, title="Enabled", description="Send a snapshot with every `new` event.")
    max_width: int = Field(640, ge=64, le=4096, title="Maximum width", description="Downscale wider frames (px).")
    quality: int = Field(80, ge=10, le=100, title="JPEG quality", description="Encoder quality (10-100).")


class MetricsConfig(StrictModel):
    """Prometheus metrics of the node (stage histograms and counters), served at /metrics."""

    enabled: bool = Field(True, title="Enabled", description="Serve /metrics over HTTP.")
    host: str = Field("127.0.0.1", title="Host", description="Address to listen on (0.0.0.0 for every interface).")
    port: int = Field(
        9464, ge=0, le=65535, title="Port", description="HTTP port of /metrics (0: any free). A taken port only warns."
    )


class EdgeConfig(BaseModel):
    """An edge node: its sources, detector, tracker, event rules and MQTT output."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    node: Annotated[str, valid_name("node name")] = Field(
        "edge-1", title="Node name", description="Unique in the deployment; used in MQTT topics."
    )
    sources: list[SourceConfig] = Field(min_length=1, title="Sources", description="Cameras and drone feeds.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, title="Detector")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, title="Tracker")
    events: EventsConfig = Field(default_factory=EventsConfig, title="Events")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig, title="Snapshots")
    video: VideoConfig = Field(default_factory=VideoConfig, title="Live video")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, title="Metrics")
    status_interval_s: float = Field(
        5.0, gt=0, le=3600, title="Status interval", description="How often per-stream status is refreshed."
    )
    telemetry_interval_s: float = Field(
        0.5, ge=0.05, le=60, title="Telemetry interval", description="Minimum time between telemetry messages."
    )

    @model_validator(mode="after")
    def _check(self) -> EdgeConfig:
        names = [s.name for s in self.sources]
        if twice := repeated(names):
            raise ValueError(f"source names must be unique; repeated: {twice}")
        unknown = sorted(set(self.video.udp_outputs) - set(names))
        if unknown:
            raise ValueError(f"video.udp_outputs names unknown streams: {', '.join(unknown)}")
        for index, source in enumerate(self.sources):
            try:
                source.detector_settings(self.detector)  # the override with the node's fields must hold together
            except ValueError as error:
                raise ValueError(f"sources[{index}].detector with the node's detector: {error}") from None
        return self


def parse_config(data: Any, origin: str = "config") -> EdgeConfig:
    return parse_model(EdgeConfig, data, origin)


def load_config(path: Path) -> EdgeConfig:
    """Read and validate an edge node's YAML config file."""
    return load_model(EdgeConfig, path)
