"""Alert-side wire messages for the station's tests: alerts through their lifecycle, zone counts, and
small but real JPEG and MP4 payloads."""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

from smarteye.wire.messages import Alert, AlertClip, AlertObject, AlertState, Box, GeoPosition, ZoneCounts
from smarteye.wire.rules import Direction, RuleKind, Severity

T0 = 1_700_000_000.0


def make_object(track_id: int = 1, label: str = "person", *, geo: bool = False) -> AlertObject:
    position = GeoPosition(lat=47.39, lon=8.54, uncertainty_m=2.5, source="mavlink") if geo else None
    return AlertObject(
        track_id=track_id, label=label, score=0.82, box=Box(x1=100, y1=200, x2=160, y2=380),
        box_norm=Box(x1=0.13, y1=0.35, x2=0.21, y2=0.66), geo=position, time_in_zone_s=4.0,
    )  # fmt: skip


def make_alert(
    alert_id: str = "a1",
    seq: int = 0,
    state: AlertState | None = None,
    *,
    node: str = "node1",
    stream: str = "cam1",
    rule: str = "door-enter",
    kind: RuleKind = RuleKind.ENTER,
    severity: Severity = Severity.WARNING,
    start_time: float = T0,
    objects: int = 1,
    clip: AlertClip | None = None,
    snapshot: bool | None = None,
    rules_version: int = 1,
) -> Alert:
    """A valid Alert; `state` follows `seq` (0 → start, else update) unless given."""
    state = state or (AlertState.START if seq == 0 else AlertState.UPDATE)
    at = start_time + seq
    cross = kind is RuleKind.CROSS
    return Alert(
        node=node, id=f"{alert_id}:{seq}", alert_id=alert_id, seq=seq, state=state, stream=stream, rule=rule,
        rule_kind=kind, severity=severity, zone=None if cross else "door", line="gate" if cross else None,
        direction=Direction.IN if cross else None, objects=[make_object(i + 1) for i in range(objects)],
        count=objects, line_counts={"in": 3, "out": 1} if cross else None, capture_time=at, start_time=start_time,
        end_time=at if state is AlertState.END else None, publish_time=at + 0.05, rules_version=rules_version,
        snapshot=(state is AlertState.START) if snapshot is None else snapshot, clip=clip,
    )  # fmt: skip


def clip_announcement(start: Alert, clip: AlertClip) -> Alert:
    """What a node sends once an alert's clip is published: the start's content, `clip` set, id `<alert_id>:clip`."""
    return start.model_copy(update={"id": f"{start.alert_id}:clip", "state": AlertState.UPDATE, "clip": clip})


def make_counts(node: str = "node1", stream: str = "cam1", *, time: float = T0, people: int = 2) -> ZoneCounts:
    return ZoneCounts(node=node, stream=stream, zones={"door": people}, lines={"gate": {"in": people, "out": 1}},
                      rules_version=1, time=time)  # fmt: skip


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    """A real (tiny) JPEG."""
    import av
    import numpy as np

    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 120, np.uint8), format="rgb24")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mjpeg") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def mp4_bytes(seconds: float = 2.0, fps: int = 10, width: int = 160, height: int = 120) -> bytes:
    """A real H.264 MP4 that browsers play (moov first, so a player can seek with Range requests)."""
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file: a real one
        path = Path(folder) / "clip.mp4"
        _write_mp4(path, seconds, fps, width, height)
        return path.read_bytes()


def _write_mp4(path: Path, seconds: float, fps: int, width: int, height: int) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            picture = np.zeros((height, width, 3), np.uint8)
            picture[:, (i * 7) % width :] = (40, 160, 220)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
