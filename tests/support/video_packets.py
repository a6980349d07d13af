"""Uplink video packets for tests of queueing and the wire format, where the picture itself does not matter."""

from __future__ import annotations

from smarteye.media.packet import _HEADER, EncodedPacket


def make_packet(
    keyframe: bool = False, pts: int = 0, stream: str = "cam", data: bytes = b"\x00\x00\x00\x01\x65"
) -> EncodedPacket:
    """A packet whose payload does not matter (queueing and wire format only)."""
    return EncodedPacket(stream, data, pts, keyframe, 1_700_000_000.25, 640, 480)


def wire_message(
    version: int = 1, flags: int = 1, width: int = 64, height: int = 48, pts: int = 0, name: bytes = b"cam",
    name_length: int | None = None, data: bytes = b"x",
) -> bytes:  # fmt: skip
    """Raw uplink bytes with any header field chosen, so malformed messages can be built on purpose."""
    length = len(name) if name_length is None else name_length
    return _HEADER.pack(version, flags, width, height, pts, 0.0, length) + name + data
