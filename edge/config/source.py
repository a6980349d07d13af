"""Configuration of one video source: where frames come from and how to keep it alive."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.config.detector import DetectorConfig
from edge.config.geo import GeoConfig, TelemetrySource
from smarteye.config.urls import check_network_url, redact_url
from smarteye.strict import StrictModel
from smarteye.wire.names import valid_name
from smarteye.wire.rules import RuleSet

DRONE_PRIORITY = 2  # default priority of a source with geo.telemetry: the pilot's view goes first
CAMERA_PRIORITY = 1  # default of a fixed camera; 0 is left for background streams


class SourceKind(StrEnum):
    """How a source is opened; `auto` infers it from the URL."""

    AUTO = "auto"
    RTSP = "rtsp"
    MPEGTS_UDP = "mpegts_udp"
    FILE = "file"
    CAMERA = "camera"


class RtspTransport(StrEnum):
    TCP = "tcp"
    UDP = "udp"


_NETWORK_SCHEMES = ("rtsp", "rtsps", "udp", "srt", "tcp", "rtp", "http", "https", "rtmp")


def infer_kind(url: str) -> SourceKind:
    """Guess the source kind from a URL (rtsp://, udp://, a device index/path, or a file)."""
    lowered = url.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        return SourceKind.RTSP
    if lowered.startswith(("udp://", "srt://", "tcp://")):
        return SourceKind.MPEGTS_UDP
    if url.isdigit() or lowered.startswith("/dev/video"):
        return SourceKind.CAMERA
    return SourceKind.FILE


class ReconnectConfig(StrictModel):
    """Capped exponential backoff between attempts to reopen a source."""

    initial_s: float = Field(1.0, gt=0, le=60, title="Initial delay", description="Delay before the first retry.")
    max_s: float = Field(30.0, gt=0, le=3600, title="Maximum delay", description="Cap of the backoff delay.")
    factor: float = Field(2.0, ge=1.0, le=10.0, title="Factor", description="Multiplier per failed attempt.")
    max_attempts: int | None = Field(
        None,
        ge=1,
        title="Maximum attempts",
        description="Consecutive failures after which the source is marked `failed` and given up; "
        "None retries forever (a camera that comes back is picked up).",
    )


class SourceConfig(BaseModel):
    """One camera or drone feed."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # the URL may hold a password

    name: Annotated[str, valid_name("stream name")] = Field(
        title="Stream name",
        description="Unique per node; used in MQTT topics and events (letters, digits, '_' and '-').",
    )
    url: str = Field(
        title="URL",
        description="rtsp://…, udp://@:5600 (MPEG-TS), a file path, or a camera index such as 0.",
        repr=False,  # may hold credentials; logs use safe_url
    )
    kind: SourceKind = Field(SourceKind.AUTO, title="Kind", description="How to open the URL; auto infers it.")
    rtsp_transport: RtspTransport = Field(
        RtspTransport.TCP, title="RTSP transport", description="TCP survives lossy links; UDP has less latency."
    )
    loop: bool = Field(False, title="Loop", description="Files only: start again at the end (demos).")
    realtime: bool = Field(
        True,
        title="Real time",
        description="Files only: deliver frames at their own rate like a camera (frames dropped when "
        "detection is slower). False processes every frame as fast as detection allows (offline analysis).",
    )
    open_timeout_s: float = Field(
        10.0, gt=0, le=120, title="Open timeout", description="Give up opening or reading after this long."
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, title="Reconnect")
    enabled: bool = Field(True, title="Enabled", description="Disabled sources are not opened.")
    geo: GeoConfig | None = Field(
        None, title="Geolocation", description="Give detections a ground position (drone telemetry or calibration)."
    )
    rules: RuleSet | None = Field(
        None,
        title="Rules",
        description="Zones, lines and the rules that raise alerts on them (version 0). Rules the ground station "
        "pushes (version 1 and up) replace these until the station clears them.",
    )
    priority: int | None = Field(
        None,
        ge=0,
        le=9,
        title="Detection priority",
        description="When detection cannot keep up with every stream, higher priorities are served first "
        "(lower ones still get at least one frame a second, see docs/scheduling.md). None: "
        "2 for a drone (a source with geo.telemetry), 1 for a fixed camera.",
    )
    max_detection_fps: float | None = Field(
        None,
        gt=0,
        le=1000,
        title="Maximum detection fps",
        description="Run detection on at most this many frames a second of this stream (the live video keeps "
        "the source's rate); None: as many as detection allows.",
    )
    detection_weight: float = Field(
        1.0,
        gt=0,
        le=100,
        title="Detection weight",
        description="Share of detection among streams of the same priority under overload (2 gets twice the "
        "frames of 1).",
    )
    detector: DetectorConfig | None = Field(
        None,
        title="Detector override",
        description="This stream's own detector settings (model, imgsz, classes, conf, iou, backend…): the fields "
        "given here replace the node's `detector` fields, the others are the node's. Streams whose resulting "
        "model settings are equal share one loaded model.",
    )

    @field_validator("url")
    @classmethod
    def _network_url(cls, url: str) -> str:
        """A network URL's port must be a number now, not an exception in the source's thread later."""
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme in _NETWORK_SCHEMES:
            check_network_url(url, host_required=scheme.startswith("rtsp"))
        return url

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if not self.url.strip():
            raise ValueError("url must not be empty")
        kind = self.resolved_kind
        if kind is SourceKind.RTSP and not self.url.lower().startswith(("rtsp://", "rtsps://")):
            raise ValueError(f"url {redact_url(self.url)!r} is not an rtsp:// URL but kind is rtsp")
        if kind is SourceKind.RTSP and not urlsplit(self.url).hostname:
            raise ValueError(f"url {redact_url(self.url)!r} has no host")
        if self.loop and kind is not SourceKind.FILE:
            raise ValueError("loop only applies to files")
        telemetry = self.geo.telemetry if self.geo else None
        if telemetry and telemetry.source is TelemetrySource.KLV and kind is SourceKind.CAMERA:
            raise ValueError("geo.telemetry.source klv needs a stream that carries KLV (MPEG-TS), not a camera")
        if self.rules is not None and self.rules.version != 0:
            raise ValueError("rules.version must be 0 here: the ground station numbers its pushed edits from 1")
        return self

    @property
    def is_drone(self) -> bool:
        """A drone's camera moves (its pose comes from telemetry); a fixed camera has none."""
        return self.geo is not None and self.geo.telemetry is not None

    @property
    def resolved_priority(self) -> int:
        """The configured priority, or the default: drones before fixed cameras."""
        if self.priority is not None:
            return self.priority
        return DRONE_PRIORITY if self.is_drone else CAMERA_PRIORITY

    def detector_settings(self, node: DetectorConfig) -> DetectorConfig:
        """The detector this stream runs: the node's, with the fields this source sets replaced (a nested block
        given here replaces the node's block whole)."""
        if self.detector is None:
            return node
        merged = node.model_dump() | self.detector.model_dump(exclude_unset=True)
        return DetectorConfig.model_validate(merged)

    @property
    def resolved_kind(self) -> SourceKind:
        return infer_kind(self.url) if self.kind is SourceKind.AUTO else self.kind

    @property
    def safe_url(self) -> str:
        """The URL without credentials, for logs and status messages."""
        return redact_url(self.url)
