"""The whole configuration of one edge node, and loading it with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.config.detector import DetectorConfig
from edge.config.mqtt import MqttConfig
from edge.config.source import NAME_RE, SourceConfig
from edge.config.tracking import EventsConfig, TrackerConfig
from edge.config.video import VideoConfig


class SnapshotConfig(BaseModel):
    """A JPEG of the frame that confirmed each object, sent with its `new` event."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, title="Enabled", description="Send a snapshot with every `new` event.")
    max_width: int = Field(640, ge=64, le=4096, title="Maximum width", description="Downscale wider frames (px).")
    quality: int = Field(80, ge=10, le=100, title="JPEG quality", description="Encoder quality (10-100).")


class EdgeConfig(BaseModel):
    """An edge node: its sources, detector, tracker, event rules and MQTT output."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    node: str = Field("edge-1", title="Node name", description="Unique in the deployment; used in MQTT topics.")
    sources: list[SourceConfig] = Field(min_length=1, title="Sources", description="Cameras and drone feeds.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, title="Detector")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, title="Tracker")
    events: EventsConfig = Field(default_factory=EventsConfig, title="Events")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig, title="Snapshots")
    video: VideoConfig = Field(default_factory=VideoConfig, title="Live video")
    status_interval_s: float = Field(
        5.0, gt=0, le=3600, title="Status interval", description="How often per-stream status is refreshed."
    )
    telemetry_interval_s: float = Field(
        0.5, ge=0.05, le=60, title="Telemetry interval", description="Minimum time between telemetry messages."
    )

    @field_validator("node")
    @classmethod
    def _node_name(cls, node: str) -> str:
        if not NAME_RE.fullmatch(node):
            raise ValueError(f"{node!r} must be 1-64 letters, digits, '_' or '-' (it is used in MQTT topics)")
        return node

    @model_validator(mode="after")
    def _check(self) -> EdgeConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        unknown = sorted(set(self.video.udp_outputs) - set(names))
        if unknown:
            raise ValueError(f"video.udp_outputs names unknown streams: {', '.join(unknown)}")
        return self


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator (file, field, problem)."""


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def format_validation_error(error: ValidationError, origin: str) -> str:
    """One line per problem: `origin: sources[1].url: message`."""
    lines = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {_location(item['loc'])}: {message}")
    return "\n".join(lines)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: Any, origin: str) -> M:
    """Validate an already-parsed mapping against `model`, turning pydantic's errors into ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, origin)) from None


def load_model(model: type[M], path: Path) -> M:
    """Read a YAML file and validate it against `model` (errors name the file, field and problem)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    return parse_model(model, data if data is not None else {}, str(path))


def parse_config(data: Any, origin: str = "config") -> EdgeConfig:
    return parse_model(EdgeConfig, data, origin)


def load_config(path: Path) -> EdgeConfig:
    """Read and validate an edge node's YAML config file."""
    return load_model(EdgeConfig, path)
