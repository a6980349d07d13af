"""KLV (SMPTE 336M) metadata parser for drone MPEG-TS feeds.

Decodes the two sets found in real UAS video: the MISB ST 0601 UAS Datalink Local Set (tag/length/value,
integer-mapped values, 16-bit running-sum checksum) and its predecessor, the MISB EG 0104 Predator UAV Basic
Universal Set (full 16-byte element keys, IEEE floats/doubles and strings). Both become one `SensorMetadata`
so that geolocation code does not care which standard the aircraft speaks. MISB ST 0903 VMTI sets (the
aircraft's own detections), standalone or as ST 0601 item 74, are decoded by edge.telemetry.vmti.

Every value that leaves here is finite and in range: a non-finite real (an EG 0104 field of view of +inf)
rejects its packet with a KlvError, because one bad number would otherwise poison every frame's geolocation.

Sources for keys and formulas: MISB ST 0601 (as tabulated in Kitware/kwiver `arrows/klv/klv_0601.cxx`,
`klv_checksum.cxx`) and MISB EG 0104 (Kitware/kwiver `arrows/klv/klv_0104.cxx` and the older
`vital/klv/klv_0104.cxx` key table; cross-checked with paretech/klvdata `misbEG0104.py`).
"""

from __future__ import annotations

import collections
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import ValidationError

from edge.telemetry.klv_codec import (
    KlvError,
    checksum16,
    decode_ber_length,
    decode_ber_oid,
    encode_ber_length,
)
from edge.telemetry.vmti import VMTI_KEY, decode_vmti_packet, decode_vmti_set
from smarteye.wire.telemetry import Corner, SensorMetadata
from smarteye.wire.vmti import VmtiReport

__all__ = [
    "EG0104_KEY", "ST0601_KEY", "VMTI_KEY", "KlvError", "KlvParser", "SensorMetadata", "VmtiReport",
    "checksum16", "decode_ber_length", "encode_ber_length", "iter_klv", "parse_packet", "utm_grid_convergence_deg",
]  # fmt: skip

UL_PREFIX = b"\x06\x0e\x2b\x34"
ST0601_KEY = bytes.fromhex("060E2B34020B01010E01030101000000")
EG0104_KEY = bytes.fromhex("060E2B34020101010E01010201010000")
_CHECKSUM_ITEM = b"\x01\x02"  # ST 0601 tag 1, length 2: always the last item of the set


def _masked(key: bytes) -> bytes:
    """SMPTE UL compared without byte 8 (registry version), which encoders set inconsistently."""
    return key[:7] + b"\x00" + key[8:]


_ST0601_MASKED, _EG0104_MASKED = _masked(ST0601_KEY), _masked(EG0104_KEY)


def _find_resync(buf: bytes, start: int) -> int:
    """Offset of the next plausible top-level key (UL of a group, i.e. a set/pack), or -1."""
    pos = buf.find(UL_PREFIX, start)
    while pos >= 0 and (pos + 4 >= len(buf) or buf[pos + 4] != 0x02):
        pos = buf.find(UL_PREFIX, pos + 1)
    return pos


def iter_klv(payload: bytes) -> Iterator[bytes | KlvError]:
    """Split a data-packet payload into KLV packets (key+length+value); yield errors instead of raising."""
    pos, size = 0, len(payload)
    while pos < size:
        if payload[pos : pos + 4] != UL_PREFIX:
            nxt = _find_resync(payload, pos + 1)
            skipped = (size if nxt < 0 else nxt) - pos
            yield KlvError("garbage", f"{skipped} bytes without a KLV universal key at offset {pos}")
            if nxt < 0:
                return
            pos = nxt
            continue
        if size - pos < 17:
            yield KlvError("truncated", f"KLV key at offset {pos} cut off ({size - pos} bytes left)")
            return
        try:
            length, start = decode_ber_length(payload, pos + 16)
        except KlvError as exc:
            yield exc
            nxt = _find_resync(payload, pos + 1)
            if nxt < 0:
                return
            pos = nxt
            continue
        if start + length > size:
            # A cut packet, or a damaged length: look for another packet inside (checksums guard what is found).
            yield KlvError("truncated", f"KLV packet at offset {pos} declares {length} bytes, {size - start} left")
            nxt = _find_resync(payload, pos + 1)
            if nxt < 0:
                return
            pos = nxt
            continue
        yield payload[pos : start + length]
        pos = start + length


# --------------------------------------------------------------------------------------------- ST 0601
def _uint(raw: bytes, lo: float, hi: float) -> float:
    """ST 0601 unsigned mapping: value · (hi − lo) / (2^n − 1) + lo."""
    return int.from_bytes(raw, "big") * (hi - lo) / ((1 << (8 * len(raw))) - 1) + lo


def _sint(raw: bytes, half: float) -> float | None:
    """ST 0601 signed mapping: value · 2·half / (2^n − 2); the most negative value is 'error/out of range'."""
    value = int.from_bytes(raw, "big", signed=True)
    if value == -(1 << (8 * len(raw) - 1)):
        return None
    return value * 2 * half / ((1 << (8 * len(raw))) - 2)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


_Decoder = Callable[[bytes], Any]


def _u(lo: float, hi: float) -> _Decoder:
    return lambda raw: _uint(raw, lo, hi)


def _s(half: float) -> _Decoder:
    return lambda raw: _sint(raw, half)


# tag -> (name, value length or None for variable, decoder). Names without a model field land in `extra`.
ST0601_TAGS: dict[int, tuple[str, int | None, _Decoder]] = {
    2: ("time", 8, lambda raw: int.from_bytes(raw, "big") / 1e6),
    3: ("mission_id", None, _text),
    4: ("platform_tail_number", None, _text),
    5: ("platform_heading_deg", 2, _u(0, 360)),
    6: ("platform_pitch_deg", 2, _s(20)),
    7: ("platform_roll_deg", 2, _s(50)),
    8: ("platform_true_airspeed_mps", 1, _u(0, 255)),
    9: ("platform_indicated_airspeed_mps", 1, _u(0, 255)),
    10: ("platform_designation", None, _text),
    11: ("image_source_sensor", None, _text),
    12: ("image_coordinate_system", None, _text),
    13: ("sensor_lat", 4, _s(90)),
    14: ("sensor_lon", 4, _s(180)),
    15: ("sensor_alt_m", 2, _u(-900, 19000)),
    16: ("hfov_deg", 2, _u(0, 180)),
    17: ("vfov_deg", 2, _u(0, 180)),
    18: ("sensor_rel_az_deg", 4, _u(0, 360)),
    19: ("sensor_rel_el_deg", 4, _s(180)),
    20: ("sensor_rel_roll_deg", 4, _u(0, 360)),
    21: ("slant_range_m", 4, _u(0, 5e6)),
    22: ("target_width_m", 2, _u(0, 10000)),
    23: ("frame_center_lat", 4, _s(90)),
    24: ("frame_center_lon", 4, _s(180)),
    25: ("frame_center_elev_m", 2, _u(-900, 19000)),
    **{26 + i: (f"offset_corner_{'lat' if i % 2 == 0 else 'lon'}_{i // 2 + 1}", 2, _s(0.075)) for i in range(8)},
    40: ("target_lat", 4, _s(90)),
    41: ("target_lon", 4, _s(180)),
    42: ("target_elev_m", 2, _u(-900, 19000)),
    56: ("platform_ground_speed_mps", 1, _u(0, 255)),
    57: ("ground_range_m", 4, _u(0, 5e6)),
    65: ("uas_ls_version", 1, lambda raw: raw[0]),
    **{
        82 + i: (f"corner_{'lat' if i % 2 == 0 else 'lon'}_{i // 2 + 1}", 4, _s(90 if i % 2 == 0 else 180))
        for i in range(8)
    },
    90: ("platform_pitch_full_deg", 4, _s(90)),
    91: ("platform_roll_full_deg", 4, _s(90)),
}
_VMTI_TAG = 74  # ST 0601 item 74: an embedded ST 0903 VMTI local set

# Plausible ranges; a value outside is kept raw as `invalid_<name>` (and counted), never used.
_RANGES: dict[str, tuple[float, float]] = {
    "sensor_lat": (-90, 90), "sensor_lon": (-180, 180), "frame_center_lat": (-90, 90),
    "frame_center_lon": (-180, 180), "hfov_deg": (0, 180), "vfov_deg": (0, 180),
    **{f"corner_lat_{i}": (-90, 90) for i in range(1, 5)}, **{f"corner_lon_{i}": (-180, 180) for i in range(1, 5)},
}  # fmt: skip

_FIELDS = set(SensorMetadata.model_fields)


def _corners(values: dict[str, Any], prefix: str, base: tuple[float, float] | None = None) -> list[Corner] | None:
    """Four (lat, lon) corners from `<prefix>_lat_N`/`_lon_N` items, offset by `base` when given."""
    out: list[Corner] = []
    for i in range(1, 5):
        lat, lon = values.get(f"{prefix}_lat_{i}"), values.get(f"{prefix}_lon_{i}")
        if lat is None or lon is None:
            return None
        out.append((lat + base[0], lon + base[1]) if base else (lat, lon))
    return out


def _check_ranges(values: dict[str, Any]) -> None:
    """Move implausible numbers (a latitude of 200°, a field of view of 500°) aside as `invalid_<name>`."""
    for name, (lo, hi) in _RANGES.items():
        value = values.get(name)
        if isinstance(value, float) and not lo <= value <= hi:
            values[f"invalid_{name}"] = values.pop(name)


def _build(standard: Literal["ST0601", "EG0104"], values: dict[str, Any], checksum_ok: bool | None) -> SensorMetadata:
    fields = {k: v for k, v in values.items() if k in _FIELDS}
    extra = {k: v for k, v in values.items() if k not in _FIELDS}
    return SensorMetadata(standard=standard, checksum_ok=checksum_ok, extra=extra, **fields)


def _verify_checksum(packet: bytes, value_at: int) -> bool:
    """Check the 2-byte checksum stored at `value_at`, which covers every byte before it (key included)."""
    stated, computed = int.from_bytes(packet[value_at : value_at + 2], "big"), checksum16(packet[:value_at])
    if stated != computed:
        raise KlvError(
            "checksum", f"ST 0601 checksum mismatch: packet says 0x{stated:04x}, bytes sum to 0x{computed:04x}"
        )
    return True


def _decode_0601(packet: bytes, start: int) -> SensorMetadata:
    checksum_ok: bool | None = None
    if len(packet) - start >= 4 and packet[-4:-2] == _CHECKSUM_ITEM:
        # Verify first, so a corrupted length byte anywhere reports as a checksum failure, not a parse error.
        checksum_ok = _verify_checksum(packet, len(packet) - 2)
    values: dict[str, Any] = {}
    pos, end = start, len(packet)
    while pos < end:
        tag, pos = decode_ber_oid(packet, pos, end)
        length, pos = decode_ber_length(packet, pos)
        if pos + length > end:
            raise KlvError("malformed", f"ST 0601 tag {tag} declares {length} bytes, only {end - pos} left in the set")
        raw = packet[pos : pos + length]
        pos += length
        if tag == 1:
            if checksum_ok is None:  # checksum present but not last: verify it where it is
                if length != 2:
                    raise KlvError("checksum", f"ST 0601 checksum item has {length} bytes instead of 2")
                checksum_ok = _verify_checksum(packet, pos - 2)
            continue
        if tag == _VMTI_TAG and raw:
            try:  # a bad embedded VMTI set costs its targets, not the pose around it
                values["vmti"] = decode_vmti_set(raw)
            except (KlvError, ValidationError):
                values["invalid_vmti"] = raw.hex()
            continue
        spec = ST0601_TAGS.get(tag)
        if spec is None:
            values[f"tag_{tag}"] = raw.hex()
        elif length == 0:  # an empty item carries no value
            values[spec[0]] = None
        elif spec[1] is not None and length != spec[1]:
            values[f"invalid_{spec[0]}"] = raw.hex()
        else:
            values[spec[0]] = spec[2](raw)
    if values.get("platform_pitch_deg") is None and values.get("platform_pitch_full_deg") is not None:
        values["platform_pitch_deg"] = values["platform_pitch_full_deg"]
    if values.get("platform_roll_deg") is None and values.get("platform_roll_full_deg") is not None:
        values["platform_roll_deg"] = values["platform_roll_full_deg"]
    _check_ranges(values)
    values["corners"] = _corners(values, "corner")  # full corners (82-89) are exact, prefer them
    lat, lon = values.get("frame_center_lat"), values.get("frame_center_lon")
    if values["corners"] is None and lat is not None and lon is not None:
        values["corners"] = _corners(values, "offset_corner", (lat, lon))
    return _build("ST0601", values, checksum_ok)


# --------------------------------------------------------------------------------------------- EG 0104
def _ieee(raw: bytes) -> float | None:
    """EG 0104 reals are big-endian IEEE 754, float or double; NaN means 'no value', ±inf is an error."""
    if len(raw) == 4:
        value = struct.unpack(">f", raw)[0]
    elif len(raw) == 8:
        value = struct.unpack(">d", raw)[0]
    else:
        raise ValueError(f"{len(raw)}-byte real")
    if math.isinf(value):
        raise KlvError("non_finite", f"EG 0104 real is {value} (bytes {raw.hex()})")
    return None if math.isnan(value) else value


def _micros(raw: bytes) -> float:
    """EG 0104 user-defined timestamp: uint64 microseconds since the Unix epoch."""
    if len(raw) != 8:
        raise ValueError(f"{len(raw)}-byte timestamp")
    return int.from_bytes(raw, "big") / 1e6


def _angle360(value: float | None) -> float | None:
    return None if value is None else value % 360.0


def _ul(tail: str) -> bytes:
    """Masked 16-byte key from its last 8 bytes; all EG 0104 elements share 06 0E 2B 34 01 01 01 vv."""
    return _masked(bytes.fromhex("060E2B3401010101" + tail))


# Keys: KWIVER klv_0104.cxx (+ vital/klv/klv_0104.cxx); 0E 01 01 02 04..06 are the ST 0601 US keys of tags 18-20.
EG0104_ITEMS: dict[bytes, tuple[str, _Decoder]] = {
    _ul("0702010101050000"): ("time", _micros),
    _ul("0105050000000000"): ("episode_number", _text),
    _ul("0101200100000000"): ("platform_designation", _text),
    _ul("0101210100000000"): ("platform_designation", _text),
    _ul("0420010201010000"): ("image_source_sensor", _text),
    _ul("0701010100000000"): ("image_coordinate_system", _text),
    _ul("0701100106000000"): ("platform_heading_deg", lambda raw: _angle360(_ieee(raw))),
    _ul("0701100105000000"): ("platform_pitch_deg", _ieee),
    _ul("0701100104000000"): ("platform_roll_deg", _ieee),
    _ul("0701020102040200"): ("sensor_lat", _ieee),
    _ul("0701020102060200"): ("sensor_lon", _ieee),
    _ul("0701020102020000"): ("sensor_alt_m", _ieee),
    _ul("0420020101080000"): ("hfov_deg", _ieee),
    _ul("04200201010A0100"): ("vfov_deg", _ieee),
    _ul("0701080101000000"): ("slant_range_m", _ieee),
    _ul("0701090201000000"): ("target_width_m", _ieee),
    _ul("0701020103020000"): ("frame_center_lat", _ieee),
    _ul("0701020103040000"): ("frame_center_lon", _ieee),
    _ul("0701020103160000"): ("frame_center_elev_m", _ieee),
    _ul("0701020103070100"): ("corner_lat_1", _ieee),
    _ul("0701020103080100"): ("corner_lat_2", _ieee),
    _ul("0701020103090100"): ("corner_lat_3", _ieee),
    _ul("07010201030A0100"): ("corner_lat_4", _ieee),
    _ul("07010201030B0100"): ("corner_lon_1", _ieee),
    _ul("07010201030C0100"): ("corner_lon_2", _ieee),
    _ul("07010201030D0100"): ("corner_lon_3", _ieee),
    _ul("07010201030E0100"): ("corner_lon_4", _ieee),
    _ul("0701100102000000"): ("sensor_azimuth_deg", lambda raw: _angle360(_ieee(raw))),  # "Angle to North"
    _ul("0701100103000000"): ("sensor_obliquity_deg", _ieee),  # "Obliquity Angle": elevation of the line of sight
    _ul("0701100101000000"): ("sensor_roll_deg", _ieee),
    _ul("0E01010204000000"): ("sensor_rel_az_deg", lambda raw: _angle360(_ieee(raw))),
    _ul("0E01010205000000"): ("sensor_rel_el_deg", _ieee),
    _ul("0E01010206000000"): ("sensor_rel_roll_deg", _ieee),
    _ul("0702010201010000"): ("start_datetime", _text),
    _ul("0702010207010000"): ("event_start_datetime", _text),
    _ul("0E0101010A000000"): ("platform_true_airspeed_mps", _ieee),
    _ul("0E0101010B000000"): ("platform_indicated_airspeed_mps", _ieee),
    _ul("0E01040101000000"): ("platform_call_sign", _text),
    _ul("0E01040102000000"): ("platform_tail_number", _text),
    _ul("0E01040103000000"): ("mission_id", _text),
    _ul("0E01020202000000"): ("fov_name", _text),
}


def utm_grid_convergence_deg(lat: float, lon: float) -> float:
    """Angle from true north to UTM grid north at a point (positive east of the zone's central meridian).

    EG 0104's "Angle to North" is measured from UTM grid north by the systems that wrote the aphill
    sample files: the bearing from the sensor to the frame centre the same packets report differs
    from it by exactly this angle (-1.46° there), and the corrected pointing reproduces the
    sensor's own frame centre to about a metre at 1.4-2.8 km range (tests/test_geolocation_klv.py).
    """
    central_meridian = math.floor((lon + 180.0) / 6.0) * 6.0 - 180.0 + 3.0
    return math.degrees(math.atan(math.tan(math.radians(lon - central_meridian)) * math.sin(math.radians(lat))))


def _relative_pointing(az: float, el: float, heading: float, pitch: float, roll: float) -> tuple[float, float]:
    """Platform-relative (azimuth, elevation) of a line of sight given in true azimuth/elevation.

    EG 0104 reports the sensor pointing in the local level frame (angle to north, obliquity); ST 0601 and the
    model want it relative to the airframe, so rotate the NED line of sight into body axes (yaw-pitch-roll).
    """
    a, e = math.radians(az), math.radians(el)
    v = (math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), -math.sin(e))
    y, p, r = math.radians(heading), math.radians(pitch), math.radians(roll)
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    # body = Rx(roll)^T · Ry(pitch)^T · Rz(yaw)^T · ned
    x1, y1, z1 = cy * v[0] + sy * v[1], -sy * v[0] + cy * v[1], v[2]
    x2, y2, z2 = cp * x1 - sp * z1, y1, sp * x1 + cp * z1
    x3, y3, z3 = x2, cr * y2 + sr * z2, -sr * y2 + cr * z2
    return math.degrees(math.atan2(y3, x3)) % 360.0, math.degrees(math.atan2(-z3, math.hypot(x3, y3)))


def _decode_0104(packet: bytes, start: int) -> SensorMetadata:
    values: dict[str, Any] = {}
    pos, end = start, len(packet)
    while pos < end:
        if end - pos < 17:
            raise KlvError("malformed", f"EG 0104 element key cut off at offset {pos}")
        key = packet[pos : pos + 16]
        length, vpos = decode_ber_length(packet, pos + 16)
        if vpos + length > end:
            raise KlvError("malformed", f"EG 0104 element {key.hex()} declares {length} bytes, {end - vpos} left")
        raw, pos = packet[vpos : vpos + length], vpos + length
        spec = EG0104_ITEMS.get(_masked(key))
        if spec is None:
            values[f"ul_{key.hex()}"] = raw.hex()
            continue
        if not raw:
            values[spec[0]] = None
            continue
        try:
            values[spec[0]] = spec[1](raw)
        except KlvError as exc:
            raise KlvError(exc.kind, f"EG 0104 {spec[0]}: {exc}") from None
        except ValueError:
            values[f"invalid_{spec[0]}"] = raw.hex()
    _check_ranges(values)
    values["corners"] = _corners(values, "corner")
    grid_azimuth, lat, lon = (values.get(k) for k in ("sensor_azimuth_deg", "sensor_lat", "sensor_lon"))
    if isinstance(grid_azimuth, float) and isinstance(lat, float) and isinstance(lon, float):
        values["sensor_azimuth_grid_deg"] = grid_azimuth
        values["sensor_azimuth_deg"] = (grid_azimuth + utm_grid_convergence_deg(lat, lon)) % 360.0
    names = ("sensor_azimuth_deg", "sensor_obliquity_deg", "platform_heading_deg", "platform_pitch_deg")
    inputs: list[float] = [v for k in (*names, "platform_roll_deg") if isinstance(v := values.get(k), float)]
    if values.get("sensor_rel_az_deg") is None and len(inputs) == 5:
        values["sensor_rel_az_deg"], values["sensor_rel_el_deg"] = _relative_pointing(*inputs)
        values["sensor_rel_angles_derived"] = True
    return _build("EG0104", values, None)


# --------------------------------------------------------------------------------------------- public API
_VMTI_MASKED = _masked(VMTI_KEY)
VMTI_HISTORY = 64  # VMTI reports kept by a parser (newest last)


def parse_packet(packet: bytes) -> SensorMetadata | VmtiReport:
    """Strictly decode exactly one KLV packet (ST 0601, EG 0104 or ST 0903 VMTI); raise `KlvError` saying what
    is wrong, and nothing else."""
    packet = bytes(packet)
    if len(packet) < 17 or packet[:4] != UL_PREFIX:
        raise KlvError("garbage", f"not a KLV packet: {len(packet)} bytes starting {packet[:4].hex() or 'empty'}")
    length, start = decode_ber_length(packet, 16)
    if start + length != len(packet):
        kind = "truncated" if start + length > len(packet) else "malformed"
        raise KlvError(kind, f"KLV length says {length} value bytes, packet has {len(packet) - start}")
    key = _masked(packet[:16])
    try:
        if key == _ST0601_MASKED:
            return _decode_0601(packet, start)
        if key == _EG0104_MASKED:
            return _decode_0104(packet, start)
        if key == _VMTI_MASKED:
            return decode_vmti_packet(packet, start)
    except ValidationError as exc:  # a decoded value the wire model refuses
        raise KlvError("malformed", f"decoded values rejected: {exc.errors()[0]['msg']}") from None
    raise KlvError("unknown_key", f"unsupported KLV key {packet[:16].hex()}")


class KlvParser:
    """Lenient stream-side decoder: bad bytes are counted in `errors`, never raised, so video keeps flowing.

    `parse` returns the sensor samples (ST 0601 / EG 0104); VMTI reports go to `vmti` (bounded, newest last)
    and are also attached to a sensor sample of the same payload that carries none (same data packet, same
    time), so publishing the latest sample publishes the aircraft's detections with it.
    """

    def __init__(self) -> None:
        self.errors: Counter[str] = Counter()
        self.last_error: str | None = None
        self.packets = 0
        self.vmti: collections.deque[VmtiReport] = collections.deque(maxlen=VMTI_HISTORY)

    def _fail(self, exc: KlvError) -> None:
        self.errors[exc.kind] += 1
        self.last_error = f"{exc.kind}: {exc}"

    def parse(self, payload: bytes, pts: float | None = None) -> list[SensorMetadata]:
        """Decode every KLV packet in one data-stream payload; packets failing checks are skipped and counted."""
        out: list[SensorMetadata] = []
        reports: list[VmtiReport] = []
        try:
            chunks = list(iter_klv(bytes(payload)))
        except Exception as exc:  # defensive: the splitter should only yield errors
            self._fail(KlvError("malformed", f"payload could not be split: {exc}"))
            return out
        for chunk in chunks:
            if isinstance(chunk, KlvError):
                self._fail(chunk)
                continue
            try:
                meta = parse_packet(chunk)
            except KlvError as exc:
                self._fail(exc)
                continue
            except Exception as exc:  # never let one odd packet stop the feed
                self._fail(KlvError("malformed", f"{type(exc).__name__}: {exc}"))
                continue
            self.packets += 1
            meta.pts = pts
            if isinstance(meta, VmtiReport):
                reports.append(meta)
                continue
            invalid = [k for k in meta.extra if k.startswith("invalid_")]
            if invalid:
                self.errors["bad_item"] += len(invalid)
                self.last_error = f"bad_item: wrong-size or out-of-range value for {', '.join(invalid)}"
            if meta.vmti is not None:
                meta.vmti.pts = pts
                self.vmti.append(meta.vmti)
            out.append(meta)
        self.vmti.extend(reports)
        for meta in out:
            if reports and meta.vmti is None:
                meta.vmti = reports[0]
        return out
