"""Fuzz target: the video uplink packet decoder (smarteye.media.packet). `EncodedPacket.from_wire` raises
PacketFormatError and nothing else; what it accepts has a name, a picture, a real size, a pts and a finite
capture time, and survives a round trip."""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from smarteye.media.packet import EncodedPacket, PacketFormatError
from tests.fuzz.mutate import fuzz_bytes, fuzz_settings, seeds

CORPUS = seeds("packet")


@fuzz_settings
@given(fuzz_bytes(CORPUS, max_size=512))
def test_from_wire_raises_only_packet_format_error(data: bytes) -> None:
    try:
        packet = EncodedPacket.from_wire(data)
    except PacketFormatError as error:
        assert str(error)
        return
    assert packet.stream and packet.data and packet.width > 0 and packet.height > 0 and packet.pts >= 0
    assert math.isfinite(packet.capture_time)
    assert EncodedPacket.from_wire(packet.to_wire()) == packet


@fuzz_settings
@given(
    st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) < 256),
    st.binary(min_size=1, max_size=64),
    st.integers(0, 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(1, 65535),
    st.integers(1, 65535),
)
def test_round_trip(
    stream: str, data: bytes, pts: int, keyframe: bool, capture: float, width: int, height: int
) -> None:
    packet = EncodedPacket(stream, data, pts, keyframe, capture, width, height)
    assert EncodedPacket.from_wire(packet.to_wire()) == packet


def test_non_finite_capture_time_is_refused() -> None:
    good = EncodedPacket.from_wire(CORPUS[0])
    for bad in (math.nan, math.inf, -math.inf):
        wire = bytearray(good.to_wire())
        struct.pack_into("!d", wire, 14, bad)  # version B, flags B, width H, height H, pts q: capture time at 14
        try:
            EncodedPacket.from_wire(bytes(wire))
        except PacketFormatError as error:
            assert "capture time" in str(error)
        else:
            raise AssertionError(f"capture time {bad} accepted")
