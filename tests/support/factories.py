"""Wire-message factories for tests: valid events, statuses and availability with overridable fields."""

from __future__ import annotations

import uuid

from smarteye.wire.messages import (
    Box,
    DetectionEvent,
    EndReason,
    EventType,
    GeoPosition,
    GeoStatus,
    NodeAvailability,
    SourceState,
    StreamStatus,
)

CLASS_IDS = {"person": 0, "car": 2, "truck": 7}  # COCO ids of the labels tests use


def make_event(
    event_id: str | None = None,
    seq: int = 0,
    *,
    node: str = "node1",
    stream: str = "cam1",
    label: str = "person",
    score: float = 0.8,
    top_score: float | None = None,
    capture_time: float = 1_700_000_000.0,
    type: EventType | None = None,
    track_id: int = 1,
    box: tuple[float, float, float, float] = (10, 20, 110.5, 220.25),
    size: tuple[int, int] = (1280, 720),
    first_seen: float | None = None,
    geo: GeoPosition | None = None,
    geo_status: GeoStatus | None = None,
    detect_delay_s: float = 0.03,
    publish_delay_s: float = 0.04,
    model: str = "yolov8n",
) -> DetectionEvent:
    """A valid DetectionEvent; `type` follows `seq` (0 → new, else update) unless given."""
    event_id = event_id or uuid.uuid4().hex
    kind = type or (EventType.NEW if seq == 0 else EventType.UPDATE)
    (x1, y1, x2, y2), (width, height) = box, size
    return DetectionEvent(
        node=node,
        id=f"{event_id}:{seq}",
        event_id=event_id,
        seq=seq,
        type=kind,
        stream=stream,
        track_id=track_id,
        label=label,
        class_id=CLASS_IDS.get(label, 0),
        score=score,
        top_score=max(score, top_score or 0.0),
        box=Box(x1=x1, y1=y1, x2=x2, y2=y2),
        box_norm=Box(x1=x1 / width, y1=y1 / height, x2=x2 / width, y2=y2 / height),
        frame_width=width,
        frame_height=height,
        capture_time=capture_time,
        pts=12.5,
        first_seen=capture_time if first_seen is None else first_seen,
        last_seen=capture_time,
        detect_time=capture_time + detect_delay_s,
        publish_time=capture_time + publish_delay_s,
        model=model,
        end_reason=EndReason.GONE if kind is EventType.END else None,
        geo=geo,
        geo_status=geo_status,
    )


def make_status(
    node: str = "node1", stream: str = "cam1", *, state: SourceState = SourceState.LIVE, time: float = 1_700_000_000.0
) -> StreamStatus:
    return StreamStatus(
        node=node,
        stream=stream,
        state=state,
        reason=None if state is SourceState.LIVE else "connection refused",
        url="rtsp://camera.local/stream",
        source_kind="rtsp",
        width=1280,
        height=720,
        fps=25.0,
        processed_fps=12.5,
        frames=1000,
        processed=500,
        dropped=500,
        reconnects=0,
        latency_ms=42.0,
        last_frame_time=time,
        time=time,
    )


def make_availability(
    node: str = "node1", state: str = "online", time: float | None = 1_700_000_000.0
) -> NodeAvailability:
    return NodeAvailability(node=node, state=state, time=time)  # type: ignore[arg-type]
