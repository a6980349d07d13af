"""The uplink video packet: its wire form, the errors for malformed messages, and the shared av.Packet."""

from __future__ import annotations

from fractions import Fraction

import pytest

from smarteye.media.packet import _HEADER, TIME_BASE, VIDEO_CLOCK, EncodedPacket, PacketFormatError
from tests.support.video_packets import make_packet, wire_message


@pytest.mark.parametrize("keyframe", [True, False])
def test_packet_round_trips_through_its_wire_form(keyframe: bool) -> None:
    """Every field the station relies on survives the uplink, and the name length counts UTF-8 bytes."""
    packet = EncodedPacket(
        "kamera-ü", b"\x00\x00\x00\x01\x67abc", 123_456_789_012, keyframe, 1_700_000_000.125, 1920, 1080
    )
    wire = packet.to_wire()
    assert len(wire) == _HEADER.size + len("kamera-ü".encode()) + len(packet.data)
    back = EncodedPacket.from_wire(wire)
    assert back == packet
    assert back.keyframe is keyframe


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "0 bytes is shorter than its header"),
        (wire_message()[: _HEADER.size - 1], "shorter than its header"),
        (wire_message(version=2), "version 2 is not supported"),
        (wire_message(name=b""), "no stream name"),
        (wire_message(data=b""), "no picture data"),
        (wire_message(name=b"c\xffm"), "not UTF-8"),
        (wire_message(width=0), "impossible size 0x48"),
        (wire_message(height=0), "impossible size 64x0"),
        (wire_message(pts=-1), "pts -1"),
        (wire_message(name_length=200), "no stream name or no picture data"),  # the name runs past the end
    ],
    ids=["empty", "short", "version", "no-name", "no-data", "name-not-utf8", "width-0", "height-0", "pts<0",
         "name-past-end"],
)  # fmt: skip
def test_malformed_wire_messages_raise_packet_format_error_naming_the_problem(message: bytes, problem: str) -> None:
    """The relay counts and skips these; the message must say what was wrong, never a struct/Unicode error."""
    with pytest.raises(PacketFormatError, match=problem):
        EncodedPacket.from_wire(message)


def test_av_packet_is_made_once_with_the_packet_timing() -> None:
    """All WebRTC senders share one av.Packet: same object, 90 kHz pts/dts, keyframe flag, same bytes."""
    packet = make_packet(keyframe=True, pts=90_000)
    first = packet.av_packet()
    assert packet.av_packet() is first
    assert (first.pts, first.dts, first.time_base) == (90_000, 90_000, TIME_BASE)
    assert first.is_keyframe and bytes(first) == packet.data
    assert Fraction(1, VIDEO_CLOCK) == TIME_BASE
