"""Wire messages: published over MQTT, sent on the video uplink and on viewers' WebRTC data channel.
The same models validate them at the ground station and generate the JSON Schema files in docs/schemas/."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from smarteye.wire.telemetry import SensorMetadata, VehicleState

SCHEMA_VERSION = 1


class EventType(StrEnum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


class EndReason(StrEnum):
    GONE = "gone"  # not seen for events.end_after_s while the stream was live
    STREAM_LOST = "stream_lost"  # the stream stopped delivering frames
    EVICTED = "evicted"  # more live objects than events.max_tracks_per_stream
    SHUTDOWN = "shutdown"  # the node stopped


class SourceState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    FINISHED = "finished"  # a file without loop reached its end
    STOPPED = "stopped"


class GeoStatus(StrEnum):
    OK = "ok"
    NO_TELEMETRY = "no_telemetry"  # no pose for this frame (no link yet, or telemetry lacks fields)
    STALE_TELEMETRY = "stale_telemetry"  # the nearest pose is older than telemetry.stale_after_s
    ABOVE_HORIZON = "above_horizon"  # the footpoint's ray never meets the ground


class GeoPosition(BaseModel):
    """Where an object stands on the ground, and how sure that is."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    uncertainty_m: float | None = Field(
        description="1-sigma horizontal error propagated from telemetry errors; None: unbounded (grazing ray)."
    )
    source: Literal["klv", "mavlink", "homography"] = Field(description="Where the camera pose came from.")
    telemetry_age_s: float | None = Field(None, description="Time between the frame and the pose used.")


class Box(BaseModel):
    """An axis-aligned box: pixels of the frame, or fractions of its width/height."""

    model_config = ConfigDict(extra="forbid")

    x1: float
    y1: float
    x2: float
    y2: float


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Bumped on incompatible changes.")
    node: str = Field(description="Edge node that produced the message.")


class DetectionEvent(_Message):
    """A tracked object's lifecycle: `new` once, rate-limited `update`s, `end` once."""

    kind: Literal["event"] = "event"
    id: str = Field(description="Unique per message; QoS-1 redelivery repeats it, so receivers dedup on it.")
    event_id: str = Field(description="Stable for the whole life of one tracked object.")
    seq: int = Field(ge=0, description="Message number within the event: 0 for `new`.")
    type: EventType
    stream: str
    track_id: int = Field(description="Tracker id, stable within the stream while the object is tracked.")
    label: str
    class_id: int
    score: float = Field(ge=0, le=1, description="Score of the detection in this frame.")
    top_score: float = Field(ge=0, le=1, description="Best score seen over the object's life.")
    box: Box = Field(description="Box in pixels of the frame.")
    box_norm: Box = Field(description="Box as fractions of frame width and height (0..1).")
    frame_width: int
    frame_height: int
    capture_time: float = Field(description="Wall clock (epoch s) when the frame was received at the edge.")
    pts: float | None = Field(None, description="Stream presentation time (s) of that frame.")
    first_seen: float = Field(description="Capture time of the object's first frame.")
    last_seen: float = Field(description="Capture time of the object's latest frame.")
    detect_time: float = Field(description="Wall clock when detection of that frame finished.")
    publish_time: float = Field(description="Wall clock when the message was handed to MQTT.")
    model: str = Field(description="Model that detected the object.")
    end_reason: EndReason | None = Field(None, description="Only on `end`.")
    geo: GeoPosition | None = Field(None, description="Ground position of the box's bottom-centre (footpoint).")
    geo_status: GeoStatus | None = Field(None, description="Why `geo` is absent; None when the stream has no geo.")


class StreamStatus(_Message):
    """Health of one stream (retained, so a new subscriber sees the current state)."""

    kind: Literal["status"] = "status"
    stream: str
    state: SourceState
    reason: str | None = Field(None, description="Why the stream is not live (the last error).")
    url: str = Field(description="Source URL with credentials removed.")
    source_kind: str
    width: int | None = None
    height: int | None = None
    fps: float = Field(0.0, description="Frames per second received from the source.")
    processed_fps: float = Field(0.0, description="Frames per second that went through detection.")
    frames: int = Field(0, description="Frames received since the node started.")
    processed: int = Field(0, description="Frames that went through detection since the node started.")
    dropped: int = Field(0, description="Frames replaced before detection took them (latest-frame-wins).")
    reconnects: int = 0
    latency_ms: float | None = Field(None, description="Recent capture → detection-done latency (median).")
    last_frame_time: float | None = None
    time: float


class NodeAvailability(_Message):
    """Whether a node is up (retained; the broker publishes `offline` as the node's last will)."""

    kind: Literal["availability"] = "availability"
    state: Literal["online", "offline"]
    time: float | None = Field(None, description="When the node said so; absent in the last will.")


class Telemetry(_Message):
    """A drone stream's platform and camera state (retained, at most every telemetry_interval_s)."""

    kind: Literal["telemetry"] = "telemetry"
    stream: str
    source: Literal["klv", "mavlink"]
    geo_status: GeoStatus | None = Field(None, description="Whether the latest frame had usable telemetry.")
    vehicle: VehicleState | None = Field(None, description="MAVLink vehicle state (source mavlink).")
    sensor: SensorMetadata | None = Field(None, description="Latest KLV sensor/platform metadata (source klv).")
    footprint: list[tuple[float, float]] | None = Field(
        None, description="Camera ground footprint, (lat, lon) of the image corners: UL, UR, LR, LL."
    )
    time: float


class VideoState(StrEnum):
    LIVE = "live"  # encoded frames are flowing
    WAITING = "waiting"  # no frame yet (the stream is starting, or a viewer waits for a keyframe)
    DOWN = "down"  # the source is lost or the edge is unreachable; recovers by itself


class VideoStreamState(_Message):
    """Whether a live video stream is flowing: sent by the edge on the uplink when its source changes state,
    and to each viewer on the WebRTC data channel (`smarteye`) when the state it sees changes."""

    kind: Literal["video_state"] = "video_state"
    stream: str
    state: VideoState
    reason: str | None = Field(None, description="Why the stream is down (the source's last error).")
    width: int | None = None
    height: int | None = None
    fps: float | None = Field(None, description="Encoded frames per second (the detection rate).")
    time: float


class VideoFrameTiming(_Message):
    """Sent to a viewer on the data channel: the RTP timestamp ↔ capture time reference of its video. The edge's
    encoder derives each frame's timestamp from its capture time (90 kHz), so one pair maps every frame:
    a frame with RTP timestamp r was captured at capture_time + wrap32(r − rtp_timestamp) / 90000 s. Sent when the
    viewer starts and whenever the relation changes (an edge restart); `requestVideoFrameCallback` gives a page the
    RTP timestamp of each frame it shows, hence its capture → display latency."""

    kind: Literal["video_frame"] = "video_frame"
    stream: str
    rtp_timestamp: int = Field(ge=0, lt=2**32, description="RTP timestamp of a frame as this viewer receives it.")
    capture_time: float = Field(description="When the edge received that frame from its source (epoch s).")
    clock_rate: Literal[90000] = Field(90000, description="RTP timestamp ticks per second.")


class VideoClock(_Message):
    """Reply to a viewer's `{"kind": "clock", "client": t}` ping: the server clock, to correct for clock offset."""

    kind: Literal["clock"] = "clock"
    client: float = Field(description="The viewer's time from its ping, returned unchanged.")
    server: float = Field(description="The server's clock when it answered (epoch s).")


class KeyframeRequest(_Message):
    """Sent by the ground station on the uplink when a viewer joins or lost packets: the edge encodes a keyframe."""

    kind: Literal["keyframe"] = "keyframe"
    stream: str


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "event": DetectionEvent,
    "status": StreamStatus,
    "availability": NodeAvailability,
    "telemetry": Telemetry,
    "video_state": VideoStreamState,
    "video_frame": VideoFrameTiming,
    "clock": VideoClock,
    "keyframe": KeyframeRequest,
}


def write_json_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema file per message type (shipped in docs/schemas/ for other systems)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in MESSAGE_MODELS.items():
        path = directory / f"{name}.v{SCHEMA_VERSION}.schema.json"
        schema = model.model_json_schema()
        schema["$id"] = f"https://smarteye.invalid/schemas/{path.name}"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
