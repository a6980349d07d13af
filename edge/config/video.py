"""Configuration of the annotated live video: drawing, the one encoder per stream, and its outputs."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smarteye.config.ice import IceServer
from smarteye.config.origins import check_origin, is_loopback
from smarteye.config.urls import check_network_url, redact_url
from smarteye.strict import StrictModel


class AnnotationConfig(StrictModel):
    """What is drawn on the frames that went through detection."""

    enabled: bool = Field(True, title="Enabled", description="Draw boxes and labels (off: the plain picture).")
    classes: list[str] | None = Field(
        None, title="Classes", description="Class names to draw; unset draws every tracked object."
    )
    line_width: int = Field(2, ge=1, le=16, title="Line width", description="Box outline width (px).")
    labels: bool = Field(True, title="Labels", description="Class name, track id and score above each box.")
    overlay: bool = Field(True, title="Overlay", description="Stream name, detection fps and latency in a corner.")


class EncoderConfig(StrictModel):
    """H.264 settings of the one encoder per stream (libx264 via PyAV, tuned for latency)."""

    max_bitrate_kbps: int = Field(
        2500, ge=100, le=50_000, title="Maximum bitrate", description="VBV cap of the constant-quality encoder."
    )
    crf: int = Field(26, ge=10, le=45, title="Quality (CRF)", description="x264 constant rate factor: lower is better.")
    preset: str = Field(
        "ultrafast",
        pattern="^(ultrafast|superfast|veryfast|faster|fast|medium)$",
        title="Preset",
        description="x264 speed preset; the edge's CPU belongs to detection first.",
    )
    keyframe_interval_s: float = Field(
        2.0, gt=0, le=60, title="Keyframe interval", description="Longest time between keyframes (s)."
    )
    max_width: int | None = Field(
        1920, ge=64, le=7680, title="Maximum width", description="Downscale wider streams before encoding; null: "
        "the source's own size. A 4K drone feed took 60 ms a frame to encode on 2 CPU cores and lost 3 frames in "
        "10 at 30 fps; at 1920 px, 28 ms and 2 in 450.",
    )  # fmt: skip


BoxesMode = Literal["page", "burn_in"]


class LiveConfig(StrictModel):
    """How the boxes reach the live video's viewers (WHEP and the station's live wall)."""

    boxes: BoxesMode = Field(
        "page",
        title="Boxes",
        description="`page`: a source already in browser-playable H.264 is forwarded unchanged (no decode copy, no "
        "encoder) and the boxes go with each frame for the page to draw; other sources are encoded with the boxes "
        "burned in. `burn_in`: always encode with the boxes burned in (viewers that cannot draw). The UDP MPEG-TS "
        "output is always burned in.",
    )
    streams: dict[str, BoxesMode] = Field(
        default_factory=dict, title="Per stream", description="Stream name → `page` or `burn_in`, overriding `boxes`."
    )
    max_keyframe_interval_s: float = Field(
        4.0, gt=0, le=600, title="Longest keyframe interval forwarded",
        description="A forwarded camera cannot make a keyframe on request, so a viewer joining waits for its next "
        "one. A source whose keyframes come further apart than this (smart-codec cameras: 10-60 s) is encoded "
        "instead, with a keyframe for every viewer who joins.",
    )  # fmt: skip

    def mode(self, stream: str) -> BoxesMode:
        return self.streams.get(stream, self.boxes)


def _host_port(value: str, what: str) -> str:
    parts = urlsplit(value if "://" in value else f"udp://{value}")
    if parts.scheme != "udp":
        raise ValueError(f"{what} must be udp://host:port (got scheme {parts.scheme!r})")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or port == 0:
        raise ValueError(f"{what} must be udp://host:port with a port (got {redact_url(value)!r})")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 keeps its brackets
    return f"udp://{host}:{port}"


class WhepServerConfig(BaseModel):
    """The edge's own WHEP endpoint (`POST /whep/<stream>`), for viewers that reach the node directly."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    enabled: bool = Field(True, title="Enabled", description="Serve WHEP on the edge node.")
    host: str = Field("127.0.0.1", title="Host", description="Address to listen on (0.0.0.0 for every interface).")
    port: int = Field(8889, ge=0, le=65535, title="Port", description="HTTP port of the WHEP endpoint (0: any free).")
    token: str | None = Field(
        None,
        min_length=16,
        title="Bearer token",
        description="WHEP requests must carry `Authorization: Bearer <token>`; required when `host` is not a "
        "loopback address (anyone who reaches the port could watch otherwise).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        title="CORS origins",
        description="Web players on these origins (e.g. https://player.example.org) may call the endpoint from "
        "a browser; none by default.",
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [check_origin(origin) for origin in origins]

    @model_validator(mode="after")
    def _token_beyond_localhost(self) -> WhepServerConfig:
        if self.enabled and self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"token is required when host is {self.host!r} (not a loopback address): set video.whep.token "
                "(e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`), "
                "or bind host to 127.0.0.1"
            )
        return self


class UplinkConfig(BaseModel):
    """The one connection per edge node that carries its encoded streams to the ground station."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(
        title="Ground station URL",
        description="The station's base URL, e.g. http://station:8080 (https:// for TLS); the uplink is a "
        "WebSocket under /api/video/uplink.",
    )
    token: str = Field(
        min_length=16,
        title="API token",
        description="A ground-station API token with the `edge` role (smarteye ground-station create-token).",
    )
    reconnect_max_s: float = Field(10.0, gt=0, le=300, title="Reconnect cap", description="Longest retry delay (s).")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"uplink url must be http(s)://host[:port] (got {redact_url(url)!r})")
        check_network_url(url)
        return url.rstrip("/")

    @property
    def websocket_url(self) -> str:
        scheme, rest = self.url.split(":", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}:{rest}/api/video/uplink"


class VideoConfig(StrictModel):
    """Annotated live video: encoded once per stream, then sent to every consumer as the same packets."""

    enabled: bool = Field(True, title="Enabled", description="Encode the annotated streams.")
    annotation: AnnotationConfig = Field(default_factory=AnnotationConfig, title="Annotation")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig, title="Encoder")
    live: LiveConfig = Field(default_factory=LiveConfig, title="Live boxes")
    whep: WhepServerConfig = Field(default_factory=WhepServerConfig, title="WHEP server")
    udp_outputs: dict[str, str] = Field(
        default_factory=dict,
        title="UDP MPEG-TS outputs",
        description="Stream name → udp://host:port: the annotated stream as H.264 in MPEG-TS (QGroundControl, VLC).",
    )
    uplink: UplinkConfig | None = Field(
        None, title="Uplink", description="Send the streams to a ground station, which relays them to browsers."
    )
    ice_servers: list[IceServer] = Field(
        default_factory=list, title="ICE servers", description="STUN/TURN servers for WebRTC viewers behind NAT."
    )

    @field_validator("udp_outputs")
    @classmethod
    def _udp_urls(cls, outputs: dict[str, str]) -> dict[str, str]:
        return {stream: _host_port(url, f"udp_outputs.{stream}") for stream, url in outputs.items()}
