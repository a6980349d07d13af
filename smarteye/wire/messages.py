"""Wire messages: published over MQTT, sent on the video uplink and on viewers' WebRTC data channel.
The same models validate them at the ground station and generate the JSON Schema files in docs/schemas/."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from smarteye.strict import StrictModel
from smarteye.wire.rules import Direction, RuleKind, RuleSet, Severity
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


class GeoPosition(StrictModel):
    """Where an object stands on the ground, and how sure that is."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    uncertainty_m: float | None = Field(
        description="1-sigma horizontal error propagated from telemetry errors; None: unbounded (grazing ray)."
    )
    source: Literal["klv", "mavlink", "homography"] = Field(description="Where the camera pose came from.")
    telemetry_age_s: float | None = Field(None, description="Time between the frame and the pose used.")


class Box(StrictModel):
    """An axis-aligned box: pixels of the frame, or fractions of its width/height."""

    x1: float
    y1: float
    x2: float
    y2: float


class _Message(StrictModel):
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
    box: Box = Field(description="Box in pixels of the frame (for an oriented box, its axis-aligned hull).")
    box_norm: Box = Field(description="Box as fractions of frame width and height (0..1).")
    angle: float | None = Field(
        None,
        description="Rotation of the oriented box in radians, clockwise in picture coordinates (ultralytics "
        "xywhr, aerial OBB models); None when the model gives axis-aligned boxes.",
    )
    corners: list[tuple[float, float]] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="The oriented box's four corners in pixels (x, y), in order around it; None when axis-aligned.",
    )
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
    geo_fused: GeoPosition | None = Field(
        None,
        description="The object's position fused over its track's life so far, each fix weighed by its uncertainty; "
        "its uncertainty shrinks as fixes agree (e.g. as a drone closes in).",
    )
    geo_status: GeoStatus | None = Field(None, description="Why `geo` is absent; None when the stream has no geo.")
    zones: list[str] = Field(default_factory=list, description="Zones the object is in now (after its filters).")
    entered_zones: list[str] = Field(
        default_factory=list, description="Every zone the object has been in during its life, in order of entry."
    )
    zone_time_s: dict[str, float] = Field(
        default_factory=dict, description="Seconds the object has spent in each zone it entered (time in zone)."
    )


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
    rules_version: int | None = Field(
        None, description="Version of the rules the stream runs (0: the edge's YAML); None: no rules."
    )
    rules_error: str | None = Field(None, description="Why the last rules pushed to this stream were refused.")
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


class VideoBox(StrictModel):
    """One box as a page draws it over the video (H.264 passthrough), in the frame's own pixels."""

    track_id: int
    class_id: int
    label: str = Field(description="Class, track id and score as the annotator writes them; empty: no label.")
    colour: str = Field(pattern="^#[0-9a-f]{6}$", description="The annotator's colour for the class.")
    x1: float
    y1: float
    x2: float
    y2: float
    corners: list[tuple[float, float]] | None = Field(None, description="An oriented box's four corners (OBB).")


class VideoBoxes(_Message):
    """Sent to a viewer on the data channel with every frame of a passthrough stream (the source's H.264 forwarded
    unchanged): the boxes to draw on the frame captured at `capture_time` (the latest detection's tracks moved
    to that time). The `video_frame` reference maps a shown frame's RTP timestamp to its capture time, so a page
    draws, in requestVideoFrameCallback, the boxes of exactly the frame shown."""

    kind: Literal["video_boxes"] = "video_boxes"
    stream: str
    capture_time: float = Field(description="When the edge received the frame from its source (epoch s).")
    width: int = Field(gt=0, description="The frame's width: the boxes' coordinates are in its pixels.")
    height: int = Field(gt=0)
    boxes: list[VideoBox]


class VideoClock(_Message):
    """Reply to a viewer's `{"kind": "clock", "client": t}` ping: the server clock, to correct for clock offset."""

    kind: Literal["clock"] = "clock"
    client: float = Field(description="The viewer's time from its ping, returned unchanged.")
    server: float = Field(description="The server's clock when it answered (epoch s).")


class KeyframeRequest(_Message):
    """Sent by the ground station on the uplink when a viewer joins or lost packets: the edge encodes a keyframe."""

    kind: Literal["keyframe"] = "keyframe"
    stream: str


class AlertState(StrEnum):
    START = "start"  # the situation began
    UPDATE = "update"  # it changed: objects joined or left, the count changed
    END = "end"  # it cleared


class AlertObject(StrictModel):
    """One tracked object that is part of an alert's situation, as it was last seen."""

    track_id: int
    label: str
    score: float = Field(ge=0, le=1)
    box: Box = Field(description="Box in pixels of the frame.")
    box_norm: Box = Field(description="Box as fractions of frame width and height (0..1).")
    geo: GeoPosition | None = Field(None, description="Ground position of its footpoint, with uncertainty.")
    time_in_zone_s: float | None = Field(None, description="Seconds it has been in the rule's zone.")


class AlertClip(StrictModel):
    """The video of an alert: cut from the node's own H.264 stream around the start, sent as MP4."""

    start_time: float = Field(description="Capture time of the clip's first frame (epoch s).")
    end_time: float = Field(description="Capture time of the clip's last frame (epoch s).")
    bytes: int = Field(ge=0, description="Size of the MP4 published on the clips topic.")


class Alert(_Message):
    """A situation a rule found: one alert, `start` once, `update`s as it evolves, `end` once (QoS 1)."""

    kind: Literal["alert"] = "alert"
    id: str = Field(description="Unique per message; QoS-1 redelivery repeats it, so receivers dedup on it.")
    alert_id: str = Field(description="Stable for the whole situation.")
    seq: int = Field(ge=0, description="Message number within the alert: 0 for `start`.")
    state: AlertState
    stream: str
    rule: str = Field(description="Name of the rule that raised it.")
    rule_kind: RuleKind
    severity: Severity
    zone: str | None = Field(None, description="The zone it is about (all kinds but cross).")
    line: str | None = Field(None, description="The line it is about (cross).")
    direction: Direction | None = Field(None, description="cross: the way the object crossed.")
    objects: list[AlertObject] = Field(description="Objects in the situation now (for `end`: when it cleared).")
    count: int = Field(ge=0, description="How many matching objects are in the situation now.")
    line_counts: dict[str, int] | None = Field(None, description="cross: running totals per direction (in, out).")
    capture_time: float = Field(description="Capture time of the frame this message reports (epoch s).")
    start_time: float = Field(description="Capture time of the frame in which the situation began.")
    end_time: float | None = Field(None, description="Only on `end`: when it cleared.")
    publish_time: float = Field(description="Wall clock when the message was handed to MQTT.")
    rules_version: int = Field(ge=0, description="Version of the rules that raised it.")
    snapshot: bool = Field(False, description="A JPEG with the zone and the objects drawn is on the snapshots topic.")
    clip: AlertClip | None = Field(None, description="Set on the message sent once the clip is published.")


class ZoneCounts(_Message):
    """The numbers a supervisor charts: objects in each zone now, and line crossings so far (every
    `counts_interval_s`)."""

    kind: Literal["counts"] = "counts"
    stream: str
    zones: dict[str, int] = Field(description="Matching objects in each zone at `time`.")
    lines: dict[str, dict[str, int]] = Field(description="Running crossings per line and direction (in, out).")
    rules_version: int = Field(ge=0)
    time: float


class RulesConfig(_Message):
    """A stream's rules as the ground station pushes them to the edge (retained, per stream)."""

    kind: Literal["rules"] = "rules"
    stream: str
    rules: RuleSet
    author: str = Field(description="Who saved this version at the station.")
    time: float


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "event": DetectionEvent,
    "status": StreamStatus,
    "availability": NodeAvailability,
    "telemetry": Telemetry,
    "video_state": VideoStreamState,
    "video_frame": VideoFrameTiming,
    "video_boxes": VideoBoxes,
    "clock": VideoClock,
    "keyframe": KeyframeRequest,
    "alert": Alert,
    "counts": ZoneCounts,
    "rules": RulesConfig,
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
