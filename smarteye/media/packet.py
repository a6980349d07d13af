"""One encoded video frame as every consumer sees it, and its binary form on the uplink.

Packets are made once by the stream's encoder, or taken unchanged from an H.264 source (passthrough), or made
once by the station when they arrive on the uplink, and then shared by every viewer, the MPEG-TS muxer and the
uplink. A passthrough packet carries its frame's boxes (`boxes`, JSON) for the page to draw over the video: they
travel with the frame itself, so the boxes a viewer gets always belong to the picture they arrive with.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from fractions import Fraction

import av

VIDEO_CLOCK = 90_000  # H.264 RTP and MPEG-TS both count in 90 kHz ticks
TIME_BASE = Fraction(1, VIDEO_CLOCK)

# version, flags, width, height, pts (90 kHz), capture time (epoch s), stream-name length
_HEADER = struct.Struct("!BBHHqdB")
_BOXES_LENGTH = struct.Struct("!I")  # version 2 only: after the name, the length of the boxes JSON that follows
_WIRE_VERSION = 1  # a packet without boxes (burned in): readable by stations that predate passthrough
_WIRE_VERSION_BOXES = 2
_KEYFRAME = 0x01
MAX_BOXES_BYTES = 1 << 18  # a frame's boxes as JSON; hundreds of boxes fit, a corrupt length does not


class PtsClock:
    """90 kHz frame times from capture times, strictly rising, so one RTP timestamp ↔ capture time pair maps every
    frame. A clock made `PtsClock(other)` counts from the other's epoch: a stream's encoder and its passthrough
    agree, and a viewer switched from one to the other never sees time jump back."""

    def __init__(self, epoch_from: PtsClock | None = None) -> None:
        self._origin = epoch_from or self
        self.epoch: float | None = None
        self.last = -1

    def __call__(self, capture_time: float) -> int:
        origin = self._origin
        if origin.epoch is None:
            origin.epoch = capture_time
        pts = max(self.last + 1, round((capture_time - origin.epoch) * VIDEO_CLOCK))
        self.last = pts
        return pts


class PacketFormatError(ValueError):
    """Bytes that are not an uplink video packet (says what is wrong)."""


@dataclass(slots=True)
class EncodedPacket:
    """One H.264 access unit (Annex B, SPS/PPS repeated before every keyframe)."""

    stream: str
    data: bytes
    pts: int  # 90 kHz ticks since the stream's encoder started; strictly increasing
    keyframe: bool
    capture_time: float  # epoch seconds when the source frame was received
    width: int
    height: int
    boxes: bytes | None = None  # passthrough: this frame's boxes as JSON for the page to draw; None: burned in
    _av_packet: av.Packet | None = field(default=None, repr=False)

    def av_packet(self) -> av.Packet:
        """The same bytes as a PyAV packet (made once, shared by every WebRTC sender)."""
        if self._av_packet is None:
            packet = av.Packet(self.data)
            packet.pts = packet.dts = self.pts
            packet.time_base = TIME_BASE
            packet.is_keyframe = self.keyframe
            self._av_packet = packet
        return self._av_packet

    def to_wire(self) -> bytes:
        name = self.stream.encode()
        version = _WIRE_VERSION if self.boxes is None else _WIRE_VERSION_BOXES
        header = _HEADER.pack(
            version, _KEYFRAME if self.keyframe else 0, self.width, self.height, self.pts, self.capture_time,
            len(name),
        )  # fmt: skip
        if self.boxes is None:
            return header + name + self.data
        return header + name + _BOXES_LENGTH.pack(len(self.boxes)) + self.boxes + self.data

    @classmethod
    def from_wire(cls, message: bytes) -> EncodedPacket:
        if len(message) < _HEADER.size:
            raise PacketFormatError(f"video packet of {len(message)} bytes is shorter than its header")
        version, flags, width, height, pts, capture_time, name_length = _HEADER.unpack_from(message)
        if version not in (_WIRE_VERSION, _WIRE_VERSION_BOXES):
            raise PacketFormatError(
                f"video packet version {version} is not supported (expected {_WIRE_VERSION} or {_WIRE_VERSION_BOXES})"
            )
        start = _HEADER.size + name_length
        try:
            stream = message[_HEADER.size : start].decode()
        except UnicodeDecodeError:
            raise PacketFormatError("video packet stream name is not UTF-8") from None
        boxes = None
        if version == _WIRE_VERSION_BOXES:
            if len(message) < start + _BOXES_LENGTH.size:
                raise PacketFormatError("video packet with boxes ends before the boxes' length")
            (length,) = _BOXES_LENGTH.unpack_from(message, start)
            start += _BOXES_LENGTH.size
            if length > MAX_BOXES_BYTES or len(message) < start + length:
                raise PacketFormatError(
                    f"video packet boxes of {length} bytes run past the packet's end or exceed {MAX_BOXES_BYTES}"
                )
            boxes = bytes(message[start : start + length])
            start += length
        data = message[start:]
        if not stream or not data:
            raise PacketFormatError("video packet has no stream name or no picture data")
        if not width or not height or pts < 0:
            raise PacketFormatError(f"video packet has an impossible size {width}x{height} or pts {pts}")
        if not math.isfinite(capture_time):  # it would poison every latency figure downstream
            raise PacketFormatError(f"video packet capture time {capture_time} is not a finite number")
        return cls(stream, bytes(data), pts, bool(flags & _KEYFRAME), capture_time, width, height, boxes)
