"""KLV parser against the real KWIVER MPEG-TS files (ST 0601 and EG 0104) and hand-built / damaged packets."""

from __future__ import annotations

import itertools
import math
import random
import struct
from pathlib import Path

import av
import pytest

from edge.telemetry.klv import (
    EG0104_KEY,
    ST0601_KEY,
    KlvError,
    KlvParser,
    SensorMetadata,
    decode_ber_length,
    encode_ber_length,
    parse_packet,
    utm_grid_convergence_deg,
)
from edge.telemetry.klv_codec import encode_ber_oid

M_PER_DEG = 111_320.0


def demux(path: Path) -> list[tuple[bytes, float | None]]:
    """All non-empty data-stream payloads with their presentation time (s), as a feed reader would see them."""
    with av.open(str(path)) as container:
        out = []
        for packet in container.demux(container.streams.data[0]):
            if packet.size:
                pts = float(packet.pts * packet.time_base) if packet.pts is not None else None
                out.append((bytes(packet), pts))
    return out


def parse_all(path: Path) -> tuple[list[SensorMetadata], KlvParser]:
    parser = KlvParser()
    results = [meta for payload, pts in demux(path) for meta in parser.parse(payload, pts)]
    return results, parser


def bcc16(data: bytes) -> int:
    """The checksum routine exactly as printed in MISB ST 0601 (byte-by-byte running sum)."""
    bcc = 0
    for i, byte in enumerate(data):
        bcc = (bcc + (byte << (8 * ((i + 1) % 2)))) & 0xFFFF
    return bcc


def local_set_items(packet: bytes) -> dict[int, bytes]:
    """Independent ST 0601 item walker (BER-OID tags, BER lengths) used to read raw values for checks."""
    length, pos = decode_ber_length(packet, 16)
    items: dict[int, bytes] = {}
    while pos < len(packet):
        tag = 0
        while True:
            byte = packet[pos]
            pos += 1
            tag = (tag << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        length, pos = decode_ber_length(packet, pos)
        items[tag] = packet[pos : pos + length]
        pos += length
    return items


def st0601_packet(items: list[tuple[int, bytes]]) -> bytes:
    """Encode an ST 0601 packet from (tag, value) items (tags < 128) and append a correct checksum."""
    body = b"".join(bytes([tag]) + encode_ber_length(len(value)) + value for tag, value in items)
    body += b"\x01\x02"
    head = ST0601_KEY + encode_ber_length(len(body) + 2)
    return head + body + bcc16(head + body).to_bytes(2, "big")


def eg0104_packet(elements: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(bytes.fromhex(key) + encode_ber_length(len(value)) + value for key, value in elements)
    return EG0104_KEY + encode_ber_length(len(body)) + body


def inside(point: tuple[float, float], polygon: list[tuple[float, float]]) -> bool:
    """Ray-casting point-in-polygon test in (lat, lon)."""
    y, x = point
    hit = False
    for (y1, x1), (y2, x2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def ground_offset_m(lat0: float, lon0: float, lat1: float, lon1: float) -> tuple[float, float]:
    """(north, east) metres from point 0 to point 1; local flat-earth approximation, fine over a few km."""
    return (lat1 - lat0) * M_PER_DEG, (lon1 - lon0) * M_PER_DEG * math.cos(math.radians(lat0))


# ------------------------------------------------------------------------------------------------ BER
def test_ber_length_forms() -> None:
    assert decode_ber_length(b"\x05", 0) == (5, 1)
    assert decode_ber_length(b"\x82\x09\x63", 0) == (0x0963, 3)
    assert decode_ber_length(b"\x00\x81\xc8", 1) == (200, 3)
    for length in (0, 127, 128, 255, 256, 70_000):
        assert decode_ber_length(encode_ber_length(length), 0)[0] == length
    with pytest.raises(KlvError) as bad:
        decode_ber_length(b"\x80", 0)
    assert bad.value.kind == "bad_length"
    with pytest.raises(KlvError) as cut:
        decode_ber_length(b"\x84\x00\x01", 0)
    assert cut.value.kind == "truncated"


# ------------------------------------------------------------------------------------------------ ST 0601, real file
@pytest.fixture(scope="module")
def st0601_payloads(media) -> list[tuple[bytes, float | None]]:
    return demux(media("kwiver_h264_klv.ts"))


def test_st0601_real_checksums_match_standard_routine(st0601_payloads) -> None:
    assert len(st0601_payloads) == 30
    for payload, _ in st0601_payloads:
        assert payload[:16] == ST0601_KEY
        assert payload[-4:-2] == b"\x01\x02"
        assert bcc16(payload[:-2]) == int.from_bytes(payload[-2:], "big")


def test_st0601_real_file_parses(media) -> None:
    results, parser = parse_all(media("kwiver_h264_klv.ts"))
    assert len(results) == 30
    assert not parser.errors and parser.last_error is None
    times = [m.time for m in results]
    assert all(t is not None for t in times)
    assert all(b > a for a, b in itertools.pairwise(times))
    for m in results:
        assert m.standard == "ST0601" and m.checksum_ok is True
        assert -90 <= m.sensor_lat <= 90 and -180 <= m.sensor_lon <= 180
        assert -90 <= m.frame_center_lat <= 90 and -180 <= m.frame_center_lon <= 180
        assert 0 <= m.platform_heading_deg <= 360 and -20 <= m.platform_pitch_deg <= 20
        assert -900 <= m.sensor_alt_m <= 19000 and 0 < m.hfov_deg <= 180 and 0 < m.vfov_deg <= 180
        assert m.corners is not None and len(m.corners) == 4
        assert m.extra["uas_ls_version"] == 17


def test_st0601_values_follow_the_standard_formulas(st0601_payloads) -> None:
    packet = st0601_payloads[0][0]
    raw = local_set_items(packet)
    m = parse_packet(packet)

    def s32(tag: int) -> int:
        return int.from_bytes(raw[tag], "big", signed=True)

    def u(tag: int) -> int:
        return int.from_bytes(raw[tag], "big")

    assert m.time == pytest.approx(u(2) / 1e6)
    assert m.platform_heading_deg == pytest.approx(u(5) * 360 / 65535)
    assert m.platform_pitch_deg == pytest.approx(int.from_bytes(raw[6], "big", signed=True) * 40 / 65534)
    assert m.sensor_lat == pytest.approx(s32(13) * 180 / 4294967294)
    assert m.sensor_lon == pytest.approx(s32(14) * 360 / 4294967294)
    assert m.sensor_alt_m == pytest.approx(u(15) * 19900 / 65535 - 900)
    assert m.sensor_rel_el_deg == pytest.approx(s32(19) * 360 / 4294967294)
    assert m.slant_range_m == pytest.approx(u(21) * 5e6 / 4294967295)
    assert m.frame_center_elev_m == pytest.approx(u(25) * 19900 / 65535 - 900)
    assert m.corners[0] == pytest.approx((s32(82) * 180 / 4294967294, s32(83) * 360 / 4294967294))
    offset_lat1 = int.from_bytes(raw[26], "big", signed=True) * 0.15 / 65534
    assert m.extra["offset_corner_lat_1"] == pytest.approx(offset_lat1)
    # The file carries the worked example of MISB ST 0601: compare with the values the standard prints.
    assert m.time == pytest.approx(1224807209.913)  # 2008-10-24 00:13:29.913 UTC
    assert m.platform_heading_deg == pytest.approx(159.9744, abs=1e-4)
    assert m.sensor_lat == pytest.approx(60.1768229669783, abs=1e-9)
    assert m.sensor_lon == pytest.approx(128.426759042045, abs=1e-9)
    assert m.sensor_alt_m == pytest.approx(14190.72, abs=0.01)
    assert m.frame_center_lat == pytest.approx(-10.5423886331461, abs=1e-9)
    assert m.frame_center_lon == pytest.approx(29.157890122923, abs=1e-9)
    assert m.extra["mission_id"] == "MISSION01" and m.extra["platform_tail_number"] == "AF-101"
    # Full corners (82-89) agree with frame centre + offsets (26-33) to the offsets' resolution.
    centre = (m.frame_center_lat, m.frame_center_lon)
    assert centre[0] + offset_lat1 == pytest.approx(m.corners[0][0], abs=1e-4)


# ------------------------------------------------------------------------------------------------ EG 0104, real files
@pytest.mark.parametrize(("name", "count"), [("kwiver_aphill_short.ts", 48), ("kwiver_aphill_klv_10s.ts", 300)])
def test_eg0104_real_files(media, name: str, count: int) -> None:
    results, parser = parse_all(media(name))
    assert len(results) == count and not parser.errors
    previous_time = previous_pts = -math.inf
    for m in results:
        assert m.standard == "EG0104" and m.checksum_ok is None
        assert m.time > previous_time and m.pts > previous_pts
        previous_time, previous_pts = m.time, m.pts
        assert 1.2e9 < m.time < 1.3e9  # September 2008
        assert 37 < m.sensor_lat < 40 and -78 < m.sensor_lon < -76  # Virginia, USA
        assert 300 < m.sensor_alt_m < 5000 and 0 <= m.platform_heading_deg < 360
        assert abs(m.platform_pitch_deg) < 20 and abs(m.platform_roll_deg) < 45
        assert 0 < m.vfov_deg < m.hfov_deg < 10
        assert m.sensor_rel_az_deg is not None and -90 < m.sensor_rel_el_deg < 0
        north, east = ground_offset_m(m.sensor_lat, m.sensor_lon, m.frame_center_lat, m.frame_center_lon)
        ground = math.hypot(north, east)
        assert 100 < ground < 5000
        # Slant range is the sensor→centre distance: consistent with the geometry (terrain near sea level).
        assert math.hypot(ground, m.sensor_alt_m) == pytest.approx(m.slant_range_m, rel=0.03)
        # "Angle to North" is the line of sight's bearing from UTM grid north; corrected by the grid
        # convergence it is the true bearing to the frame centre. "Obliquity" is its elevation (negative = down).
        bearing = math.degrees(math.atan2(east, north)) % 360
        assert abs((m.extra["sensor_azimuth_deg"] - bearing + 180) % 360 - 180) < 0.3
        assert abs((m.extra["sensor_azimuth_grid_deg"] - bearing + 180) % 360 - 180) > 1.0
        depression = math.degrees(math.atan2(m.sensor_alt_m, ground))
        assert m.extra["sensor_obliquity_deg"] == pytest.approx(-depression, abs=1)
        assert m.corners is not None and len(m.corners) == 4
        assert inside((m.frame_center_lat, m.frame_center_lon), m.corners)
        for lat, lon in m.corners:
            assert math.hypot(*ground_offset_m(m.frame_center_lat, m.frame_center_lon, lat, lon)) < 500


def test_eg0104_values_are_the_raw_ieee_numbers(media) -> None:
    packet, pts = demux(media("kwiver_aphill_short.ts"))[0]

    def element(key_hex: str, fmt: str) -> float:
        key = bytes.fromhex(key_hex)
        at = packet.index(key) + 16
        return struct.unpack(fmt, packet[at + 1 : at + 1 + packet[at]])[0]

    m = KlvParser().parse(packet, pts)[0]
    assert m.pts == pytest.approx(1.4)
    assert m.time == element("060e2b34010101030702010101050000", ">Q") / 1e6
    assert m.sensor_lat == element("060e2b34010101030701020102040200", ">d") == pytest.approx(38.252336)
    assert m.sensor_lon == element("060e2b34010101030701020102060200", ">d") == pytest.approx(-77.366859)
    assert m.sensor_alt_m == element("060e2b34010101010701020102020000", ">f") == pytest.approx(1054.4, abs=0.01)
    assert m.frame_center_lat == element("060e2b34010101010701020103020000", ">d")
    assert m.corners[2][1] == element("060e2b340101010307010201030d0100", ">d")  # lower-right longitude
    assert m.platform_heading_deg == pytest.approx(element("060e2b34010101070701100106000000", ">f") % 360)
    assert m.extra["platform_designation"] == "ABCD"


def test_eg0104_hand_built_packet_and_relative_pointing() -> None:
    f32 = lambda v: struct.pack(">f", v)  # noqa: E731
    f64 = lambda v: struct.pack(">d", v)  # noqa: E731
    packet = eg0104_packet(
        [
            ("060e2b34010101030702010101050000", (1_700_000_000_250_000).to_bytes(8, "big")),
            ("060e2b34010101070701100106000000", f32(90.0)),  # heading east
            ("060e2b34010101070701100105000000", f32(0.0)),
            ("060e2b34010101070701100104000000", f32(0.0)),
            ("060e2b34010101010701100102000000", f32(120.0)),  # line of sight bearing 120°
            ("060e2b34010101010701100103000000", f32(-30.0)),  # 30° below the horizon
            ("060e2b34010101030701020102040200", f64(45.5)),
            ("060e2b34010101030701020102060200", f64(7.25)),
            ("060e2b340101010a0701020103160000", f32(212.5)),  # frame centre elevation (key version 0A)
            ("060e2b3401010101ffffffffffffffff", b"\x01\x02"),  # unknown element kept raw
        ]
    )
    m = parse_packet(packet)
    assert m.time == pytest.approx(1_700_000_000.25)
    assert (m.sensor_lat, m.sensor_lon, m.frame_center_elev_m) == (45.5, 7.25, 212.5)
    # Grid bearing 120° at 7.25°E (UTM zone 32, central meridian 9°E) is a true bearing of 120° + γ.
    gamma = math.degrees(math.atan(math.tan(math.radians(7.25 - 9.0)) * math.sin(math.radians(45.5))))
    assert utm_grid_convergence_deg(45.5, 7.25) == pytest.approx(gamma)
    assert m.sensor_rel_az_deg == pytest.approx(30.0 + gamma) and m.sensor_rel_el_deg == pytest.approx(-30.0)
    assert m.extra["sensor_rel_angles_derived"] is True
    assert m.extra["ul_060e2b3401010101ffffffffffffffff"] == "0102"
    assert m.corners is None and m.checksum_ok is None


# ------------------------------------------------------------------------------------------------ hand-built ST 0601
def test_st0601_hand_built_round_trip() -> None:
    def s(value: float, half: float, n: int) -> bytes:
        return round(value * ((1 << 8 * n) - 2) / (2 * half)).to_bytes(n, "big", signed=True)

    def u(value: float, lo: float, hi: float, n: int) -> bytes:
        return round((value - lo) * ((1 << 8 * n) - 1) / (hi - lo)).to_bytes(n, "big")

    offsets = [0.01, -0.02, 0.015, 0.02, -0.01, 0.02, -0.015, -0.02]
    items = [
        (2, (1_700_000_123_456_789).to_bytes(8, "big")),
        (3, b"LONG-MISSION-NAME " * 8),  # >127-byte packet: long-form BER length
        (5, u(271.5, 0, 360, 2)),
        (6, s(-5.25, 20, 2)),
        (7, b"\x80\x00"),  # reserved "out of range" value → None
        (13, s(48.8584, 90, 4)),
        (14, s(2.2945, 180, 4)),
        (15, u(420.0, -900, 19000, 2)),
        (16, u(62.2, 0, 180, 2)),
        (18, u(350.0, 0, 360, 4)),
        (19, s(-45.0, 180, 4)),
        (21, u(1234.5, 0, 5e6, 4)),
        (23, s(48.85, 90, 4)),
        (24, s(2.3, 180, 4)),
        (25, u(35.0, -900, 19000, 2)),
        *[(26 + i, s(v, 0.075, 2)) for i, v in enumerate(offsets)],
        (65, b"\x13"),
        (120, b"\xab\xcd"),  # not mapped: kept raw
    ]
    packet = st0601_packet(items)
    assert packet[16] & 0x80  # long-form length in use
    parser = KlvParser()
    (m,) = parser.parse(packet, pts=12.5)
    assert not parser.errors
    assert m.checksum_ok is True and m.pts == 12.5
    assert m.time == pytest.approx(1_700_000_123.456789)
    assert m.platform_heading_deg == pytest.approx(271.5, abs=360 / 65535)
    assert m.platform_pitch_deg == pytest.approx(-5.25, abs=40 / 65534)
    assert m.platform_roll_deg is None
    assert m.sensor_lat == pytest.approx(48.8584, abs=1e-7) and m.sensor_lon == pytest.approx(2.2945, abs=1e-7)
    assert m.sensor_alt_m == pytest.approx(420.0, abs=0.5) and m.hfov_deg == pytest.approx(62.2, abs=0.01)
    assert m.sensor_rel_az_deg == pytest.approx(350.0, abs=1e-6) and m.sensor_rel_el_deg == pytest.approx(-45.0)
    assert m.slant_range_m == pytest.approx(1234.5, abs=0.01) and m.frame_center_elev_m == pytest.approx(35.0, abs=0.5)
    assert m.extra["uas_ls_version"] == 19 and m.extra["tag_120"] == "abcd"
    assert m.extra["mission_id"].startswith("LONG-MISSION-NAME")
    expected = [(48.85 + offsets[2 * i], 2.3 + offsets[2 * i + 1]) for i in range(4)]
    for got, want in zip(m.corners, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    assert m.model_dump()["standard"] == "ST0601"


def test_st0601_without_checksum_is_accepted_unverified() -> None:
    body = b"\x02\x08" + (1_600_000_000_000_000).to_bytes(8, "big")
    m = parse_packet(ST0601_KEY + encode_ber_length(len(body)) + body)
    assert m.checksum_ok is None and m.time == 1_600_000_000.0


# ------------------------------------------------------------------------------------------------ damaged input
def test_flipped_byte_fails_checksum_and_is_skipped(st0601_payloads) -> None:
    good = st0601_payloads[0][0]
    parser = KlvParser()
    for offset in (30, len(good) // 2, len(good) - 5):
        bad = bytearray(good)
        bad[offset] ^= 0x10
        assert parser.parse(bytes(bad)) == []
    assert parser.errors == {"checksum": 3}
    assert "checksum mismatch" in parser.last_error
    with pytest.raises(KlvError, match="checksum") as exc:
        parse_packet(good[:40] + bytes([good[40] ^ 1]) + good[41:])
    assert exc.value.kind == "checksum"
    # A damaged packet does not hide its intact neighbour in the same payload.
    assert len(parser.parse(bytes(bad) + good)) == 1


def test_truncated_unknown_and_bad_length_are_counted(st0601_payloads) -> None:
    good = st0601_payloads[0][0]
    parser = KlvParser()
    assert parser.parse(good[:-100]) == []
    assert parser.parse(good[:10]) == []
    assert parser.errors["truncated"] == 2
    security = bytes.fromhex("060E2B34020301010E01030302000000") + b"\x03abc"  # ST 0102 security set: not ours
    assert parser.parse(security) == []
    assert parser.errors["unknown_key"] == 1 and "unsupported KLV key" in parser.last_error
    assert parser.parse(ST0601_KEY + b"\x80" + b"\x00" * 20) == []  # indefinite length: not in KLV
    assert parser.parse(ST0601_KEY + b"\xff" + b"\x00" * 20) == []  # reserved
    assert parser.errors["bad_length"] == 2
    with pytest.raises(KlvError) as exc:
        parse_packet(good[:-1])
    assert exc.value.kind == "truncated"
    with pytest.raises(KlvError) as exc:
        parse_packet(security)
    assert exc.value.kind == "unknown_key"


def test_garbage_never_raises_and_resyncs(st0601_payloads, media) -> None:
    rng = random.Random(1234)
    parser = KlvParser()
    noise = rng.randbytes(10_000)
    assert parser.parse(noise) == []
    assert parser.errors and parser.last_error
    good = st0601_payloads[3][0]
    aphill = demux(media("kwiver_aphill_short.ts"))[0][0]
    found = parser.parse(rng.randbytes(100) + good + aphill + rng.randbytes(50), pts=3.0)
    assert [m.standard for m in found] == ["ST0601", "EG0104"]
    # Random single-byte damage anywhere in either standard: counted or decoded, never an exception.
    fuzz = KlvParser()
    for _ in range(300):
        data = bytearray(rng.choice((good, aphill)))
        data[rng.randrange(len(data))] = rng.randrange(256)
        for m in fuzz.parse(bytes(data[: rng.randrange(17, len(data) + 1)])):
            assert isinstance(m, SensorMetadata)
    assert fuzz.errors.total() > 0


# ------------------------------------------------------------------------------------------------ issue 12: bad values
HFOV_KEY = "060e2b34010101020420020101080000"  # EG 0104 sensor horizontal field of view (float)
LAT_KEY = "060e2b34010101030701020102040200"  # EG 0104 sensor latitude (double)


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_non_finite_eg0104_value_is_a_klv_error_and_spares_its_neighbours(bad: float) -> None:
    poisoned = eg0104_packet([(HFOV_KEY, struct.pack(">f", bad)), (LAT_KEY, struct.pack(">d", 45.0))])
    with pytest.raises(KlvError) as exc:
        parse_packet(poisoned)
    assert exc.value.kind == "non_finite" and "hfov_deg" in str(exc.value)
    assert type(exc.value) is KlvError  # not a bare ValueError / OverflowError
    good = eg0104_packet([(HFOV_KEY, struct.pack(">f", 12.5)), (LAT_KEY, struct.pack(">d", 45.0))])
    parser = KlvParser()
    found = parser.parse(poisoned + good, pts=1.0)
    assert [(m.hfov_deg, m.sensor_lat) for m in found] == [(12.5, 45.0)]
    assert parser.errors == {"non_finite": 1}


def test_nan_is_no_value_and_out_of_range_values_are_kept_aside() -> None:
    packet = eg0104_packet([(HFOV_KEY, struct.pack(">f", math.nan)), (LAT_KEY, struct.pack(">d", 200.0))])
    parser = KlvParser()
    (m,) = parser.parse(packet)
    assert m.hfov_deg is None and m.sensor_lat is None
    assert m.extra["invalid_sensor_lat"] == 200.0
    assert parser.errors == {"bad_item": 1} and "invalid_sensor_lat" in parser.last_error


def reencode_st0601(packet: bytes, length_bytes: int, item_length_bytes: int | None = None) -> bytes:
    """The same ST 0601 set written with legal non-minimal BER lengths (leading zero bytes), checksum redone."""
    items = [(tag, value) for tag, value in local_set_items(packet).items() if tag != 1]
    body = b"".join(
        encode_ber_oid(tag) + encode_ber_length(len(value), item_length_bytes) + value for tag, value in items
    )
    body += b"\x01\x02"
    head = ST0601_KEY + encode_ber_length(len(body) + 2, length_bytes)
    return head + body + bcc16(head + body).to_bytes(2, "big")


@pytest.mark.parametrize(("length_bytes", "item_length_bytes"), [(4, None), (9, None), (3, 2), (16, 3)])
def test_st0601_with_non_minimal_ber_lengths_decodes(st0601_payloads, length_bytes, item_length_bytes) -> None:
    good = st0601_payloads[0][0]
    long_form = reencode_st0601(good, length_bytes, item_length_bytes)
    assert long_form[16] == 0x80 | length_bytes and long_form[17] == 0  # a leading zero byte: not minimal
    parser = KlvParser()
    (m,) = parser.parse(long_form + good, pts=2.0)[:1]
    assert not parser.errors and m.checksum_ok is True
    reference = parse_packet(good)
    assert m.model_dump(exclude={"pts", "vmti"}) == reference.model_dump(exclude={"pts", "vmti"})
    assert m.vmti.targets == reference.vmti.targets and len(m.vmti.targets) == 2


def test_damaged_length_does_not_hide_the_packets_after_it(st0601_payloads) -> None:
    first, second = st0601_payloads[0][0], st0601_payloads[1][0]
    damaged = first[:16] + b"\x83\xff\xff\xff" + first[19:]  # declares 16 MiB
    parser = KlvParser()
    found = parser.parse(damaged + second)
    assert [m.time for m in found] == [parse_packet(second).time]
    assert parser.errors["truncated"] == 1
