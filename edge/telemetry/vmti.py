"""MISB ST 0903 VMTI (Video Moving Target Indicator) local set: decoder and encoder.

Aircraft with their own detector report targets in KLV beside the video, either as a standalone ST 0903 packet
(16-byte key 06 0E 2B 34 02 0B 01 01 0E 01 03 03 06 00 00 00, checksum like ST 0601) or embedded in an
ST 0601 set as item 74. Only what the station can use is decoded: the set's header items and, per VTarget
pack, the id, centroid, bounding box, priority, confidence, history, ground location and algorithm id;
unknown or nested items (masks, objects, chips, trackers) are skipped.

Tags and encodings from MISB ST 0903 (VMTI LS tags 1-13 and 101; VTarget pack tags 1-22), as tabulated in
Kitware/kwiver `arrows/klv/klv_0903*.cxx` and WestRidgeSystems/jmisb `api/klv/st0903`; floats use MISB
ST 1201 IMAPB (edge.telemetry.klv_codec).
"""

from __future__ import annotations

from typing import Any

from edge.telemetry.klv_codec import (
    KlvError,
    checksum16,
    decode_ber_length,
    decode_ber_oid,
    decode_imapb,
    encode_ber_length,
    encode_ber_oid,
    encode_imapb,
)
from smarteye.wire.vmti import VmtiReport, VmtiTarget

VMTI_KEY = bytes.fromhex("060E2B34020B01010E01030306000000")

# VMTI local set tags
_CHECKSUM, _TIME, _SYSTEM, _VERSION, _DETECTED, _REPORTED, _FRAME_NUMBER = 1, 2, 3, 4, 5, 6, 7
_WIDTH, _HEIGHT, _SENSOR, _HFOV, _VFOV, _VTARGETS = 8, 9, 10, 11, 12, 101
# VTarget pack tags
_T_CENTROID, _T_TOP_LEFT, _T_BOTTOM_RIGHT, _T_PRIORITY, _T_CONFIDENCE, _T_HISTORY = 1, 2, 3, 4, 5, 6
_T_OFFSET_LAT, _T_OFFSET_LON, _T_HAE, _T_LOCATION, _T_ROW, _T_COLUMN, _T_ALGORITHM = 10, 11, 12, 17, 19, 20, 22

OFFSET_RANGE = (-19.2, 19.2)  # target location offsets, degrees, IMAPB on 3 bytes
HAE_RANGE = (-900.0, 19000.0)  # heights, metres
LAT_RANGE, LON_RANGE = (-90.0, 90.0), (-180.0, 180.0)  # location pack: 4 bytes each, then HAE on 2
FOV_RANGE = (0.0, 180.0)
MAX_TARGETS = 1024  # a report listing more is cut here: bounded work per packet


def _items(buf: bytes, start: int, end: int, what: str) -> list[tuple[int, bytes]]:
    """(tag, value) items of a local set between `start` and `end` (BER-OID tags, BER lengths)."""
    out: list[tuple[int, bytes]] = []
    pos = start
    while pos < end:
        tag, pos = decode_ber_oid(buf, pos, end)
        length, pos = decode_ber_length(buf, pos)
        if pos + length > end:
            raise KlvError("malformed", f"{what} item {tag} declares {length} bytes, only {end - pos} left")
        out.append((tag, buf[pos : pos + length]))
        pos += length
    return out


def _uint(raw: bytes, what: str, max_bytes: int = 8) -> int:
    if not raw or len(raw) > max_bytes:
        raise KlvError("malformed", f"VMTI {what} has {len(raw)} bytes")
    return int.from_bytes(raw, "big")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _pixel(number: int, width: int | None) -> tuple[int, int] | None:
    """ST 0903 pixel number → 0-based (x, y): number = (row − 1) · width + column, row and column from 1."""
    if not width or number < 1:
        return None
    row, column = divmod(number - 1, width)
    return column, row


def _location(raw: bytes) -> tuple[float | None, float | None, float | None]:
    """ST 0903 location pack (truncation pack): lat (4 bytes), lon (4), HAE (2), then optional sigmas/rhos."""
    if len(raw) < 10:
        raise KlvError("malformed", f"VMTI location pack of {len(raw)} bytes (needs at least 10)")
    return decode_imapb(raw[0:4], *LAT_RANGE), decode_imapb(raw[4:8], *LON_RANGE), decode_imapb(raw[8:10], *HAE_RANGE)


def _target(pack: bytes, width: int | None) -> VmtiTarget:
    target_id, pos = decode_ber_oid(pack, 0, len(pack), max_bytes=8)
    fields: dict[str, Any] = {"id": target_id}
    top_left = bottom_right = None
    row = column = None
    offset = [None, None]
    for tag, raw in _items(pack, pos, len(pack), f"VTarget {target_id}"):
        if not raw:
            continue
        if tag == _T_CENTROID:
            fields["centroid_px"] = _pixel(_uint(raw, "centroid"), width)
        elif tag == _T_TOP_LEFT:
            top_left = _pixel(_uint(raw, "box corner"), width)
        elif tag == _T_BOTTOM_RIGHT:
            bottom_right = _pixel(_uint(raw, "box corner"), width)
        elif tag == _T_PRIORITY:
            fields["priority"] = _uint(raw, "priority", 1)
        elif tag == _T_CONFIDENCE:
            confidence = _uint(raw, "confidence", 1)
            if confidence > 100:
                raise KlvError("out_of_range", f"VTarget {target_id} confidence {confidence} % above 100")
            fields["confidence_pct"] = confidence
        elif tag == _T_HISTORY:
            fields["history"] = _uint(raw, "history")
        elif tag == _T_OFFSET_LAT:
            offset[0] = decode_imapb(raw, *OFFSET_RANGE)
        elif tag == _T_OFFSET_LON:
            offset[1] = decode_imapb(raw, *OFFSET_RANGE)
        elif tag == _T_HAE:
            fields["hae_m"] = decode_imapb(raw, *HAE_RANGE)
        elif tag == _T_LOCATION:
            lat, lon, hae = _location(raw)
            fields.update(lat=lat, lon=lon)
            if hae is not None:
                fields["hae_m"] = hae
        elif tag == _T_ROW:
            row = _uint(raw, "centroid row")
        elif tag == _T_COLUMN:
            column = _uint(raw, "centroid column")
        elif tag == _T_ALGORITHM:
            fields["algorithm_id"] = _uint(raw, "algorithm id")
    if row and column:  # explicit row/column (1-based) win over a pixel number
        fields["centroid_px"] = (column - 1, row - 1)
    if top_left and bottom_right:
        fields["box_px"] = (*top_left, *bottom_right)
    if offset[0] is not None and offset[1] is not None:
        fields["location_offset_deg"] = (offset[0], offset[1])
    return VmtiTarget(**fields)


def _targets(series: bytes, width: int | None) -> list[VmtiTarget]:
    """A VTarget series: VTarget packs, each preceded by its BER length."""
    out: list[VmtiTarget] = []
    pos = 0
    while pos < len(series) and len(out) < MAX_TARGETS:
        length, pos = decode_ber_length(series, pos)
        if pos + length > len(series):
            raise KlvError("malformed", f"VTarget pack declares {length} bytes, only {len(series) - pos} left")
        if length:
            out.append(_target(series[pos : pos + length], width))
        pos += length
    return out


def decode_vmti_set(buf: bytes, start: int = 0, end: int | None = None, checksum_ok: bool | None = None) -> VmtiReport:
    """Decode the items of a VMTI local set (the value of a standalone packet, or ST 0601 item 74)."""
    end = len(buf) if end is None else end
    values: dict[str, Any] = {"checksum_ok": checksum_ok}
    series: bytes | None = None
    for tag, raw in _items(buf, start, end, "VMTI"):
        if not raw or tag == _CHECKSUM:
            continue
        if tag == _TIME:
            values["time"] = _uint(raw, "timestamp") / 1e6
        elif tag == _SYSTEM:
            values["system_name"] = _text(raw)
        elif tag == _VERSION:
            values["version"] = _uint(raw, "version", 2)
        elif tag == _DETECTED:
            values["targets_detected"] = _uint(raw, "target count", 3)
        elif tag == _FRAME_NUMBER:
            values["frame_number"] = _uint(raw, "frame number", 3)
        elif tag == _WIDTH:
            values["frame_width"] = _uint(raw, "frame width", 3)
        elif tag == _HEIGHT:
            values["frame_height"] = _uint(raw, "frame height", 3)
        elif tag == _SENSOR:
            values["source_sensor"] = _text(raw)
        elif tag == _HFOV:
            values["hfov_deg"] = decode_imapb(raw, *FOV_RANGE)
        elif tag == _VFOV:
            values["vfov_deg"] = decode_imapb(raw, *FOV_RANGE)
        elif tag == _VTARGETS:
            series = raw
    if series is not None:
        values["targets"] = _targets(series, values.get("frame_width"))
    return VmtiReport(**values)


def decode_vmti_packet(packet: bytes, start: int) -> VmtiReport:
    """A standalone ST 0903 packet whose value starts at `start`; its checksum (item 1, last) is verified."""
    checksum_ok: bool | None = None
    end = len(packet)
    if end - start >= 4 and packet[-4:-2] == b"\x01\x02":
        stated, computed = int.from_bytes(packet[-2:], "big"), checksum16(packet[:-2])
        if stated != computed:
            raise KlvError(
                "checksum", f"ST 0903 checksum mismatch: packet says 0x{stated:04x}, bytes sum to 0x{computed:04x}"
            )
        checksum_ok, end = True, end - 4
    return decode_vmti_set(packet, start, end, checksum_ok)


# --------------------------------------------------------------------------------------------- encoder
def _item(tag: int, value: bytes) -> bytes:
    return encode_ber_oid(tag) + encode_ber_length(len(value)) + value


def _uint_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _pixel_number(x: int, y: int, width: int) -> int:
    return y * width + x + 1


def encode_target(target: VmtiTarget, width: int | None) -> bytes:
    """One VTarget pack (without its series length prefix)."""
    body = b""
    if target.centroid_px is not None:
        if width:
            body += _item(_T_CENTROID, _uint_bytes(_pixel_number(*target.centroid_px, width)))
        body += _item(_T_ROW, _uint_bytes(target.centroid_px[1] + 1))
        body += _item(_T_COLUMN, _uint_bytes(target.centroid_px[0] + 1))
    if target.box_px is not None:
        if not width:
            raise ValueError("a VTarget bounding box needs the report's frame_width")
        x1, y1, x2, y2 = target.box_px
        body += _item(_T_TOP_LEFT, _uint_bytes(_pixel_number(x1, y1, width)))
        body += _item(_T_BOTTOM_RIGHT, _uint_bytes(_pixel_number(x2, y2, width)))
    if target.priority is not None:
        body += _item(_T_PRIORITY, bytes([target.priority]))
    if target.confidence_pct is not None:
        body += _item(_T_CONFIDENCE, bytes([target.confidence_pct]))
    if target.history is not None:
        body += _item(_T_HISTORY, _uint_bytes(target.history))
    if target.location_offset_deg is not None:
        body += _item(_T_OFFSET_LAT, encode_imapb(target.location_offset_deg[0], *OFFSET_RANGE, 3))
        body += _item(_T_OFFSET_LON, encode_imapb(target.location_offset_deg[1], *OFFSET_RANGE, 3))
    if target.lat is not None and target.lon is not None:
        hae = target.hae_m if target.hae_m is not None else 0.0
        location = encode_imapb(target.lat, *LAT_RANGE, 4) + encode_imapb(target.lon, *LON_RANGE, 4)
        body += _item(_T_LOCATION, location + encode_imapb(hae, *HAE_RANGE, 2))
    elif target.hae_m is not None:
        body += _item(_T_HAE, encode_imapb(target.hae_m, *HAE_RANGE, 2))
    if target.algorithm_id is not None:
        body += _item(_T_ALGORITHM, _uint_bytes(target.algorithm_id))
    return encode_ber_oid(target.id) + body


def encode_vmti_set(report: VmtiReport) -> bytes:
    """The items of a VMTI local set (no key, no checksum): the value of ST 0601 item 74."""
    body = b""
    if report.time is not None:
        body += _item(_TIME, round(report.time * 1e6).to_bytes(8, "big"))
    if report.system_name is not None:
        body += _item(_SYSTEM, report.system_name.encode())
    body += _item(_VERSION, _uint_bytes(report.version if report.version is not None else 5))
    if report.targets_detected is not None:
        body += _item(_DETECTED, _uint_bytes(report.targets_detected))
    body += _item(_REPORTED, _uint_bytes(len(report.targets)))
    for tag, value in ((_FRAME_NUMBER, report.frame_number), (_WIDTH, report.frame_width),
                       (_HEIGHT, report.frame_height)):  # fmt: skip
        if value is not None:
            body += _item(tag, _uint_bytes(value))
    if report.source_sensor is not None:
        body += _item(_SENSOR, report.source_sensor.encode())
    if report.hfov_deg is not None:
        body += _item(_HFOV, encode_imapb(report.hfov_deg, *FOV_RANGE, 2))
    if report.vfov_deg is not None:
        body += _item(_VFOV, encode_imapb(report.vfov_deg, *FOV_RANGE, 2))
    if report.targets:
        packs = (encode_target(t, report.frame_width) for t in report.targets)
        body += _item(_VTARGETS, b"".join(encode_ber_length(len(p)) + p for p in packs))
    return body


def encode_vmti_packet(report: VmtiReport, length_bytes: int | None = None) -> bytes:
    """A standalone ST 0903 packet with its checksum; `length_bytes` forces a long-form (non-minimal) length."""
    body = encode_vmti_set(report) + b"\x01\x02"
    head = VMTI_KEY + encode_ber_length(len(body) + 2, length_bytes)
    return head + body + checksum16(head + body).to_bytes(2, "big")
