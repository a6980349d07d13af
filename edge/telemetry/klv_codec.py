"""KLV building blocks shared by every MISB set decoder: the error type, BER lengths, BER-OID tags, the 16-bit
running-sum checksum and the MISB ST 1201 float-to-integer mapping (IMAPB).

Kept apart from the set decoders (klv.py: ST 0601 / EG 0104; vmti.py: ST 0903) so each of them reads and writes
the same primitives; encoders live here too because tests and simulators re-emit KLV.
"""

from __future__ import annotations

import math


class KlvError(ValueError):
    """A KLV packet that cannot be decoded; `kind` is the short error class counted by `KlvParser`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------------------------- BER lengths
def decode_ber_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a BER length (short or long form) at `pos`; return (length, offset of the value).

    The long form may use more bytes than needed (leading zero bytes): legal BER that some real encoders
    write (e.g. always 4 length bytes), so any count of 1..127 bytes is accepted; the caller checks that
    the length fits its buffer.
    """
    if pos >= len(buf):
        raise KlvError("truncated", f"BER length missing at offset {pos}")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count == 0x7F:  # 0x80: indefinite form, 0xFF: reserved (X.690 8.1.3.5)
        raise KlvError("bad_length", f"invalid BER length byte 0x{first:02x} at offset {pos}")
    if pos + 1 + count > len(buf):
        raise KlvError("truncated", f"BER length at offset {pos} needs {count} bytes, buffer ends")
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def encode_ber_length(length: int, size: int | None = None) -> bytes:
    """Encode a BER length: short form below 128, else long form; `size` forces `size` length bytes
    (long form, leading zeros), as some encoders write."""
    if size is None:
        if length < 0x80:
            return bytes([length])
        size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


# --------------------------------------------------------------------------------------------- BER-OID
def decode_ber_oid(buf: bytes, pos: int, end: int, max_bytes: int = 4) -> tuple[int, int]:
    """Decode a BER-OID integer (tags above 127, ST 0903 target ids) at `pos`; return (value, next offset)."""
    value = 0
    for i in range(max_bytes):
        if pos + i >= end:
            break
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos + i + 1
    raise KlvError("malformed", f"bad BER-OID value at offset {pos}")


def encode_ber_oid(value: int) -> bytes:
    """Encode a non-negative integer as BER-OID (7 bits per byte, high bit set on all but the last)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


# --------------------------------------------------------------------------------------------- checksum
def checksum16(data: bytes) -> int:
    """ST 0601 / ST 0903 checksum: 16-bit running sum, even-offset bytes in the high byte (bcc_16)."""
    return ((sum(data[0::2]) << 8) + sum(data[1::2])) & 0xFFFF


# --------------------------------------------------------------------------------------------- IMAPB (ST 1201)
def _imap_terms(lo: float, hi: float, size: int) -> tuple[float, float, float]:
    """(forward scale, backward scale, zero offset) of IMAPB(lo, hi, size), ST 1201 section 8.1.2."""
    b_pow = math.ceil(math.log2(hi - lo))
    d_pow = 8 * size - 1
    forward, backward = 2.0 ** (d_pow - b_pow), 2.0 ** (b_pow - d_pow)
    zero = forward * lo - math.floor(forward * lo) if lo < 0 < hi else 0.0
    return forward, backward, zero


def decode_imapb(raw: bytes, lo: float, hi: float) -> float | None:
    """ST 1201 IMAPB value in [lo, hi]; None for its special values (NaN, ±inf, below/above range, user).

    A special value has the most significant bit set together with another bit; a reserved special value
    or a normal value outside [lo, hi] is a KlvError.
    """
    if not raw or len(raw) > 8:
        raise KlvError("malformed", f"IMAPB value of {len(raw)} bytes")
    size = len(raw)
    value = int.from_bytes(raw, "big")
    msb = 1 << (8 * size - 1)
    if value & msb and value != msb:
        ident = (value >> (8 * size - 5)) & 0b1111
        if ident in (0b1000, 0b1001, 0b1101, 0b1010, 0b1110, 0b1011, 0b1111):
            return None  # user defined, ±inf, quiet / signalling NaN: no usable number
        if ident == 0b1100 and (value >> (8 * size - 8)) & 0b111 in (0, 1):
            return None  # below minimum / above maximum
        raise KlvError("malformed", f"reserved IMAPB special value 0x{raw.hex()}")
    _, backward, zero = _imap_terms(lo, hi, size)
    result = backward * (value - zero) + lo
    if abs(result) < backward / 2:
        result = 0.0  # ST 1201 decodes exact zero exactly
    if not lo <= result <= hi:
        raise KlvError("out_of_range", f"IMAPB value {result} outside [{lo}, {hi}]")
    return result


def encode_imapb(value: float, lo: float, hi: float, size: int) -> bytes:
    """ST 1201 IMAPB encoding of a finite value in [lo, hi] on `size` bytes (the reverse of decode_imapb)."""
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"IMAPB value {value} not finite in [{lo}, {hi}]")
    forward, _, zero = _imap_terms(lo, hi, size)
    return int(forward * (value - lo) + zero).to_bytes(size, "big")
