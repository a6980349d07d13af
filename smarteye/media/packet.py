"""One encoded video frame as every consumer sees it, and its binary form on the uplink.

Packets are made once by the stream's encoder (or once by the station when they arrive on the
uplink) and then shared, unchanged, by every viewer, the MPEG-TS muxer and the uplink.
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
_WIRE_VERSION = 1
_KEYFRAME = 0x01


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
        header = _HEADER.pack(
            _WIRE_VERSION, _KEYFRAME if self.keyframe else 0, self.width, self.height, self.pts, self.capture_time,
            len(name),
        )  # fmt: skip
        return header + name + self.data

    @classmethod
    def from_wire(cls, message: bytes) -> EncodedPacket:
        if len(message) < _HEADER.size:
            raise PacketFormatError(f"video packet of {len(message)} bytes is shorter than its header")
        version, flags, width, height, pts, capture_time, name_length = _HEADER.unpack_from(message)
        if version != _WIRE_VERSION:
            raise PacketFormatError(f"video packet version {version} is not supported (expected {_WIRE_VERSION})")
        start = _HEADER.size + name_length
        try:
            stream = message[_HEADER.size : start].decode()
        except UnicodeDecodeError:
            raise PacketFormatError("video packet stream name is not UTF-8") from None
        data = message[start:]
        if not stream or not data:
            raise PacketFormatError("video packet has no stream name or no picture data")
        if not width or not height or pts < 0:
            raise PacketFormatError(f"video packet has an impossible size {width}x{height} or pts {pts}")
        if not math.isfinite(capture_time):  # it would poison every latency figure downstream
            raise PacketFormatError(f"video packet capture time {capture_time} is not a finite number")
        return cls(stream, bytes(data), pts, bool(flags & _KEYFRAME), capture_time, width, height)
