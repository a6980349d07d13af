"""Fuzz target: KLV parsing (ST 0601, EG 0104, ST 0903 VMTI). `parse_packet` may raise KlvError and nothing
else; the stream-side `KlvParser` never raises, and whatever it returns is finite and publishable."""

from __future__ import annotations

import math

from hypothesis import given

from edge.telemetry.klv import KlvError, KlvParser, iter_klv, parse_packet
from smarteye.wire.telemetry import SensorMetadata
from tests.fuzz.mutate import fuzz_bytes, fuzz_settings, seeds

CORPUS = seeds("klv")


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def test_seeds_decode() -> None:
    """The corpus is meaningful: every seed is a packet the decoder accepts."""
    for seed in CORPUS:
        assert parse_packet(seed) is not None


@fuzz_settings
@given(fuzz_bytes(CORPUS))
def test_parse_packet_raises_only_klv_error(data: bytes) -> None:
    try:
        decoded = parse_packet(data)
    except KlvError as error:
        assert error.kind and str(error)
        return
    assert _finite(decoded.model_dump())
    decoded.model_dump_json()


@fuzz_settings
@given(fuzz_bytes(CORPUS, max_size=8192, max_mutations=6))
def test_stream_parser_never_raises(data: bytes) -> None:
    parser = KlvParser()
    found = parser.parse(data, pts=1.0)
    chunks = list(iter_klv(data))
    assert len(found) + sum(1 for c in chunks if isinstance(c, KlvError)) <= len(chunks)
    for meta in found:
        assert isinstance(meta, SensorMetadata) and meta.pts == 1.0
        assert _finite(meta.model_dump())
        meta.model_dump_json()
    for report in parser.vmti:
        assert _finite(report.model_dump())
