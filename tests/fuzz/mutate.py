"""Hypothesis strategies shared by the fuzz targets: raw random bytes, and seeds from tests/fuzz/corpus/ with a
few byte-level mutations (flips, overwrites, inserts, deletes, cuts, duplicated or spliced runs), the way a
coverage-guided fuzzer starts from a corpus. Bounded: FUZZ_EXAMPLES (env SMARTEYE_FUZZ_EXAMPLES) examples per
target keeps the whole fuzz suite well under a minute in CI; raise it for a longer local run."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parent / "corpus"
FUZZ_EXAMPLES = int(os.environ.get("SMARTEYE_FUZZ_EXAMPLES", "150"))

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # the machine is shared: no timing verdicts
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("SMARTEYE_FUZZ_RANDOM") is None,  # CI: the same examples every run
    database=None,
)


def seeds(target: str) -> list[bytes]:
    """The committed seed files of one target (regenerate with `python -m tests.fuzz.make_corpus`)."""
    files = sorted((CORPUS / target).glob("*"))
    assert files, f"no seeds in {CORPUS / target}: run python -m tests.fuzz.make_corpus"
    return [path.read_bytes() for path in files]


@st.composite
def _mutated(draw: st.DrawFn, corpus: list[bytes], max_mutations: int) -> bytes:
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, max_mutations))):
        op = draw(st.sampled_from(("flip", "set", "insert", "delete", "cut", "dup", "splice", "int", "double")))
        at = draw(st.integers(0, len(data))) if data else 0
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(data):
            data[at] = draw(st.sampled_from((0x00, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255)))))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "cut":
            del data[at:]
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif op == "splice":
            other = draw(st.sampled_from(corpus))
            start = draw(st.integers(0, len(other)))
            data[at:] = other[start:]
        elif op == "int" and at + 4 <= len(data):  # interesting 32-bit values (lengths, counts, floats)
            value = draw(st.sampled_from((0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7F800000)))
            data[at : at + 4] = value.to_bytes(4, "big")
        elif op == "double" and at + 8 <= len(data):  # non-finite and extreme IEEE doubles, either byte order
            value = draw(st.sampled_from((math.nan, math.inf, -math.inf, 1e308, -0.0)))
            data[at : at + 8] = struct.pack(draw(st.sampled_from((">d", "<d"))), value)
    return bytes(data)


def fuzz_bytes(corpus: list[bytes], max_size: int = 4096, max_mutations: int = 4) -> st.SearchStrategy[bytes]:
    """Random bytes or a mutated seed (mostly the latter: random bytes rarely get past the first check)."""
    return st.one_of(st.binary(max_size=max_size), _mutated(corpus, max_mutations), _mutated(corpus, max_mutations))
