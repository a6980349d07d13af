"""The frame record: one decoded frame stamped with its capture time, and everything the stages add to it.

A frame is created by its source (picture, capture time, pts, the stream's recent KLV) and then passes
through the stages of its stream in order (edge/pipeline.py): detections → tracks with ids → ground
positions on the tracks → zones, line crossings and alerts (rules) → lifecycle events. Sinks read the
finished record. Nothing travels beside the frame in parallel lists or shared queues, so a stage sees
exactly what the frame saw.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from edge.detect.detector import Detections
    from edge.track.tracker import TrackedBox
    from smarteye.wire.messages import Alert, DetectionEvent, GeoStatus, ZoneCounts
    from smarteye.wire.rules import RuleSet


@dataclass(slots=True, frozen=True)
class DataPacket:
    """A non-video packet (KLV metadata in drone MPEG-TS feeds) with its stream time.

    `seq` rises by one per packet of a source (across reconnects), so a stage that sees the same
    packet in several frames' windows handles it once.
    """

    seq: int
    pts: float | None
    receive_time: float
    payload: bytes


class DataWindow:
    """The most recent data packets of one source, bounded; every frame carries a snapshot of it.

    KLV arrives interleaved with the video at its own rate. Latest-frame-wins drops frames, so the
    packets cannot ride only on the frame they arrived before; a snapshot of the recent window on every
    frame lets the geolocation stage match any frame to the sample nearest its pts.
    """

    def __init__(self, maxlen: int) -> None:
        self._packets: collections.deque[DataPacket] = collections.deque(maxlen=maxlen)
        self._seq = 0

    def add(self, pts: float | None, receive_time: float, payload: bytes) -> None:
        self._seq += 1
        self._packets.append(DataPacket(self._seq, pts, receive_time, payload))

    def snapshot(self) -> tuple[DataPacket, ...]:
        return tuple(self._packets)

    def __len__(self) -> int:
        return len(self._packets)

    def __iter__(self) -> Iterator[DataPacket]:
        return iter(tuple(self._packets))


@dataclass(slots=True)
class Frame:
    """One frame of one stream and what the stages found in it.

    `capture_time` is the wall clock (epoch seconds) when the frame's packet was received, so the
    latency of any event it causes can be measured end to end; `pts` is the stream's own time.
    The picture is kept as the decoder produced it and converted to BGR only when a consumer asks,
    so frames that latest-frame-wins drops never pay for the conversion.
    """

    stream: str
    seq: int
    capture_time: float
    pts: float | None
    width: int
    height: int
    _decoded: Any = field(default=None, repr=False)
    _bgr: np.ndarray | None = field(default=None, repr=False)
    data: tuple[DataPacket, ...] = field(default=(), repr=False)
    """The source's recent data packets (KLV) when this frame was decoded."""
    detections: Detections | None = field(default=None, repr=False)
    tracks: list[TrackedBox] = field(default_factory=list, repr=False)
    """Tracked objects with ids; the geolocation stage sets each one's ground position."""
    geo_status: GeoStatus | None = None
    """Why the tracks have (or lack) ground positions; None when the stream is not geolocated."""
    rules: RuleSet | None = field(default=None, repr=False)
    """The rules this frame was judged by (set by the rules stage; None before it ran)."""
    alerts: list[Alert] = field(default_factory=list, repr=False)
    """Alert messages this frame caused (start / update / end), in order."""
    counts: ZoneCounts | None = field(default=None, repr=False)
    """Zone and line counts, on the frames where a counts interval elapsed."""
    events: list[DetectionEvent] = field(default_factory=list, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)
    """Seconds spent per stage on this frame (decode included), for the stage histograms."""
    detected_at: float | None = field(default=None, repr=False)
    """perf_counter() when detection finished with it: the hand-off to tracking is timed from here."""
    source_packet: Any = field(default=None, repr=False)
    """The compressed packet (av.Packet) this frame was decoded from, when one packet gave exactly this frame
    (no reordering): the live video forwards it unchanged instead of encoding (H.264 passthrough)."""

    @classmethod
    def from_bgr(cls, stream: str, seq: int, capture_time: float, pts: float | None, image: np.ndarray) -> Frame:
        height, width = image.shape[:2]
        return cls(stream, seq, capture_time, pts, width, height, None, image)

    @classmethod
    def from_av(
        cls,
        stream: str,
        seq: int,
        capture_time: float,
        pts: float | None,
        av_frame: Any,
        data: tuple[DataPacket, ...] = (),
    ) -> Frame:
        return cls(stream, seq, capture_time, pts, av_frame.width, av_frame.height, av_frame, None, data)

    def bgr(self) -> np.ndarray:
        """The picture as a BGR array (converted once, on first use)."""
        if self._bgr is None:
            self._bgr = self._decoded.to_ndarray(format="bgr24")
            self._decoded = None
        return self._bgr
