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
        (wire_message(version=3), "version 3 is not supported"),
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


def test_a_passthrough_packet_carries_its_frames_boxes_through_the_uplink() -> None:
    """Boxes (the page draws them) travel in the packet itself, so they always arrive with their frame; a packet
    without boxes keeps version 1, which stations that predate passthrough read."""
    boxes = b'[{"track_id":3,"class_id":0,"label":"person #3 0.90","colour":"#ff3838","x1":1,"y1":2,"x2":3,"y2":4}]'
    packet = EncodedPacket("cam", b"\x00\x00\x00\x01\x65", 3000, False, 1_700_000_000.5, 640, 480, boxes)
    wire = packet.to_wire()
    assert wire[0] == 2
    assert EncodedPacket.from_wire(wire) == packet
    assert EncodedPacket.from_wire(EncodedPacket("cam", b"x", 0, True, 1.0, 64, 48, b"[]").to_wire()).boxes == b"[]"
    assert make_packet().to_wire()[0] == 1 and EncodedPacket.from_wire(make_packet().to_wire()).boxes is None


@pytest.mark.parametrize(
    ("tail", "problem"),
    [(b"\x00\x00", "ends before the boxes' length"), (b"\x00\x00\x00\x09[]", "run past the packet's end"),
     (b"\x7f\x00\x00\x00" + b"x" * 10, "run past the packet's end or exceed")],
    ids=["no-length", "short", "huge"],
)  # fmt: skip
def test_malformed_boxes_raise_packet_format_error(tail: bytes, problem: str) -> None:
    message = wire_message(version=2, data=b"")[: _HEADER.size + 3] + tail
    with pytest.raises(PacketFormatError, match=problem):
        EncodedPacket.from_wire(message)


def test_a_stream_clock_shared_by_encoder_and_passthrough_counts_from_one_epoch() -> None:
    """A viewer switched from the forwarded source to the encoder (or back) sees time go on, never back."""
    from smarteye.media.packet import PtsClock

    passthrough = PtsClock()
    encoder = PtsClock(passthrough)
    assert passthrough(100.0) == 0 and passthrough(100.04) == 3600
    assert encoder(100.08) == 7200  # the same epoch
    assert encoder(100.08) == 7201  # strictly rising per clock
