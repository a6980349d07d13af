"""MISB ST 0903 VMTI: the aircraft's own detections, standalone or inside ST 0601 (item 74), mixed with other sets.

Expected bytes are written here from the standard's field definitions (tags, BER-OID ids, pixel numbers
(row − 1) · width + column, ST 1201 IMAPB), not from the decoder's own encoder.
"""

from __future__ import annotations

import math

import pytest

from edge.telemetry.klv import KlvError, KlvParser, parse_packet
from edge.telemetry.klv_codec import checksum16, decode_imapb, encode_ber_length, encode_imapb
from edge.telemetry.vmti import VMTI_KEY, encode_vmti_packet
from smarteye.wire.vmti import VmtiReport, VmtiTarget
from tests.edge.telemetry.test_klv import demux, st0601_packet


def imapb(value: float, lo: float, hi: float, size: int) -> bytes:
    """ST 1201 section 8.1.2 forward mapping, written out independently of the code under test."""
    b_pow = math.ceil(math.log2(hi - lo))
    d_pow = 8 * size - 1
    s_f = 2.0 ** (d_pow - b_pow)
    z_offset = s_f * lo - math.floor(s_f * lo) if lo < 0 < hi else 0.0
    return int(s_f * (value - lo) + z_offset).to_bytes(size, "big")


def item(tag: int, value: bytes) -> bytes:
    assert tag < 128
    return bytes([tag]) + encode_ber_length(len(value)) + value


def standalone(body: bytes) -> bytes:
    """A standalone VMTI packet: key, length, items, then item 1 (checksum) over everything before it."""
    body += b"\x01\x02"
    head = VMTI_KEY + encode_ber_length(len(body) + 2)
    return head + body + checksum16(head + body).to_bytes(2, "big")


def test_imapb_matches_the_st1201_examples_and_special_values() -> None:
    # Values the ST 0903 example in the MISB ST 0601 sample carries: HAE 10000 m, latitude offset 10°.
    assert imapb(10000.0, -900, 19000, 2) == bytes.fromhex("2a94")
    assert imapb(10.0, -19.2, 19.2, 3) == bytes.fromhex("3a6667")
    assert decode_imapb(bytes.fromhex("2a94"), -900, 19000) == 10000.0
    assert decode_imapb(bytes.fromhex("3a6667"), -19.2, 19.2) == pytest.approx(10.0, abs=2**-17)
    assert decode_imapb(imapb(0.0, -19.2, 19.2, 3), -19.2, 19.2) == 0.0
    for value in (-90.0, -12.345678, 0.0, 45.5, 90.0):
        assert encode_imapb(value, -90, 90, 4) == imapb(value, -90, 90, 4)
        assert decode_imapb(imapb(value, -90, 90, 4), -90, 90) == pytest.approx(value, abs=1e-7)
    # Special values: +inf C8, -inf E8, quiet NaN D0, below-min E0, above-max E1, user-defined C0 → no value.
    for first in (0xC8, 0xE8, 0xD0, 0xF0, 0xE0, 0xE1, 0xC0):
        assert decode_imapb(bytes([first, 0, 0]), -19.2, 19.2) is None
    with pytest.raises(KlvError) as reserved:
        decode_imapb(bytes([0xE4, 0, 0]), -19.2, 19.2)
    assert reserved.value.kind == "malformed"


def test_st0601_sample_carries_the_st0903_example(media) -> None:
    """The MISB ST 0601 sample embeds the ST 0903 example set as item 74: compare with the values it prints."""
    payloads = demux(media("kwiver_h264_klv.ts"))
    parser = KlvParser()
    found = [m for payload, pts in payloads for m in parser.parse(payload, pts)]
    assert len(found) == 30 and not parser.errors
    assert len(parser.vmti) == 30
    vmti = found[0].vmti
    assert vmti is not None and vmti.pts == found[0].pts
    assert (vmti.system_name, vmti.version, vmti.source_sensor) == ("DSTO_ADSS_VMTI", 5, "EO Nose")
    assert (vmti.frame_number, vmti.frame_width, vmti.frame_height) == (78000, 1920, 1080)
    assert vmti.hfov_deg == pytest.approx(12.5, abs=0.01) and vmti.vfov_deg == pytest.approx(10.0, abs=0.01)
    assert vmti.targets_detected == 28 and [t.id for t in vmti.targets] == [1, 1234]
    target = vmti.targets[1]
    assert (target.priority, target.confidence_pct, target.history, target.algorithm_id) == (27, 80, 2765, 3)
    assert target.hae_m == 10000.0
    assert target.location_offset_deg == pytest.approx((10.0, 12.0), abs=1e-5)
    # Centroid pixel number 409600 in a 1920-wide frame: row 214, column 640 (1-based).
    assert target.centroid_px == (1136, 871)  # explicit centroid row/column items win over the pixel number
    assert vmti.targets[0].centroid_px == ((409600 - 1) % 1920, (409600 - 1) // 1920)
    assert target.box_px == ((409600 - 1) % 1920, (409600 - 1) // 1920) * 2


def test_hand_built_standalone_packet_from_the_field_definitions() -> None:
    width = 1280
    pixel = lambda x, y: (y * width + x + 1).to_bytes(3, "big")  # noqa: E731  (row − 1) · width + column
    location = imapb(48.8584, -90, 90, 4) + imapb(2.2945, -180, 180, 4) + imapb(35.0, -900, 19000, 2)
    pack = (
        b"\x81\x00"  # target id 128 as BER-OID
        + item(1, pixel(640, 360))
        + item(2, pixel(600, 330))
        + item(3, pixel(680, 390))
        + item(5, b"\x5a")  # confidence 90 %
        + item(17, location)
        + item(99, b"\x01\x02\x03")  # not decoded, skipped
    )
    body = (
        item(2, (1_700_000_000_500_000).to_bytes(8, "big"))
        + item(3, b"EO/IR VMTI")
        + item(4, b"\x05")
        + item(8, width.to_bytes(2, "big"))
        + item(9, (720).to_bytes(2, "big"))
        + b"\x65"  # tag 101, VTarget series
        + encode_ber_length(len(pack) + 1)
        + encode_ber_length(len(pack))
        + pack
    )
    packet = standalone(body)
    report = parse_packet(packet)
    assert isinstance(report, VmtiReport) and report.checksum_ok is True
    assert report.time == pytest.approx(1_700_000_000.5) and report.system_name == "EO/IR VMTI"
    (target,) = report.targets
    assert target.id == 128 and target.centroid_px == (640, 360) and target.box_px == (600, 330, 680, 390)
    assert target.confidence_pct == 90
    assert target.lat == pytest.approx(48.8584, abs=2.5e-7) and target.lon == pytest.approx(2.2945, abs=2.5e-7)
    assert target.hae_m == 35.0
    bad = bytearray(packet)
    bad[40] ^= 0x01
    with pytest.raises(KlvError) as exc:
        parse_packet(bytes(bad))
    assert exc.value.kind == "checksum"


def report_with_targets(n: int) -> VmtiReport:
    return VmtiReport(
        time=1_750_000_000.0, system_name="sim", version=5, frame_width=1920, frame_height=1080, targets_detected=n,
        hfov_deg=30.0, vfov_deg=17.0,
        targets=[
            VmtiTarget(id=i + 1, centroid_px=(100 + i, 200 + i), box_px=(90 + i, 190 + i, 110 + i, 210 + i),
                       priority=1 + i % 255, confidence_pct=i % 101, lat=-33.9 + i * 1e-4, lon=151.2, hae_m=12.0,
                       algorithm_id=2)
            for i in range(n)
        ],
    )  # fmt: skip


@pytest.mark.parametrize(("targets", "length_bytes"), [(0, None), (1, None), (3, 4), (200, None)])
def test_encoder_and_decoder_agree(targets: int, length_bytes: int | None) -> None:
    sent = report_with_targets(targets)
    got = parse_packet(encode_vmti_packet(sent, length_bytes))
    assert isinstance(got, VmtiReport) and got.checksum_ok is True
    assert got.model_dump(exclude={"targets", "checksum_ok", "hfov_deg", "vfov_deg"}) == sent.model_dump(
        exclude={"targets", "checksum_ok", "hfov_deg", "vfov_deg"}
    )
    assert got.hfov_deg == pytest.approx(30.0, abs=0.01) and got.vfov_deg == pytest.approx(17.0, abs=0.01)
    assert len(got.targets) == targets
    for a, b in zip(got.targets, sent.targets, strict=True):
        assert a.model_dump(exclude={"lat", "lon", "hae_m"}) == b.model_dump(exclude={"lat", "lon", "hae_m"})
        assert a.lat == pytest.approx(b.lat, abs=2.5e-7) and a.lon == pytest.approx(b.lon, abs=2.5e-7)


def test_mixed_sets_decode_every_packet_whose_checksum_verifies(media) -> None:
    st0601 = demux(media("kwiver_h264_klv.ts"))[0][0]
    eg0104 = demux(media("kwiver_aphill_short.ts"))[0][0]
    vmti = encode_vmti_packet(report_with_targets(2))
    damaged = bytearray(encode_vmti_packet(report_with_targets(5)))
    damaged[30] ^= 0x40
    parser = KlvParser()
    found = parser.parse(st0601 + bytes(damaged) + vmti + eg0104 + b"\x00\x01junk", pts=7.0)
    assert [m.standard for m in found] == ["ST0601", "EG0104"]
    assert parser.errors == {"checksum": 1, "garbage": 1}
    # Embedded (item 74) and standalone reports are both kept, newest last, stamped with the packet's pts.
    assert [len(r.targets) for r in parser.vmti] == [2, 2]
    assert [r.system_name for r in parser.vmti] == ["DSTO_ADSS_VMTI", "sim"]
    assert all(r.pts == 7.0 for r in parser.vmti)
    assert found[0].vmti.system_name == "DSTO_ADSS_VMTI"  # its own item 74
    assert found[1].vmti is not None and found[1].vmti.system_name == "sim"  # the standalone one beside it
    assert found[1].model_dump_json()  # publishable as is


def test_bad_vmti_is_refused_with_a_reason_and_an_embedded_one_costs_only_its_targets() -> None:
    bad_set = b"\x65" + encode_ber_length(5) + b"\x04\x01\x05\x01\xc8"  # one pack: id 1, confidence 200 %
    with pytest.raises(KlvError, match="confidence 200") as exc:
        parse_packet(standalone(bad_set))
    assert exc.value.kind == "out_of_range"
    lat = round(45.0 * (2**32 - 2) / 180).to_bytes(4, "big", signed=True)
    carrier = st0601_packet([(13, lat), (74, bad_set)])
    parser = KlvParser()
    (m,) = parser.parse(standalone(bad_set) + carrier)
    assert m.sensor_lat == pytest.approx(45.0) and m.vmti is None and "invalid_vmti" in m.extra
    assert parser.errors == {"out_of_range": 1, "bad_item": 1}
