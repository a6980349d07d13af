"""Fuzz target: the MAVLink byte path (pymavlink's robust parser → MavlinkReader.process → decoders → fleet).

Random bytes and mutated real frames (tests/fuzz/corpus/mavlink: the first few hundred bytes of real logs) are
replayed as raw MAVLink and as tlogs: the reader returns, counts what it could not parse, and never raises.
Real messages with extreme field values (NaN, ±inf, integer limits: what forged frames with a valid CRC carry)
go through the decoders: the state they leave is finite or unknown, never NaN."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pymavlink import mavutil

from edge.telemetry.mavlink_decoders import DECODERS
from edge.telemetry.mavlink_reader import MavlinkReader, ensure_mavlink2
from tests.fuzz.mutate import fuzz_bytes, fuzz_settings, seeds

ensure_mavlink2()
CORPUS = seeds("mavlink")
WORK = Path(tempfile.mkdtemp(prefix="smarteye-fuzz-mavlink-"))


def _messages() -> list[Any]:
    """Decodable messages of the seeds (tlog seeds carry an 8-byte timestamp before each frame)."""
    out = []
    for seed in CORPUS:
        parser = mavutil.mavlink.MAVLink(None)
        parser.robust_parsing = True
        for msg in parser.parse_buffer(seed) or []:
            if msg.get_type() in DECODERS:
                out.append(msg)
    return out


MESSAGES = _messages()


def _replay(data: bytes, suffix: str) -> MavlinkReader:
    path = WORK / f"input{suffix}"
    path.write_bytes(data)
    reader = MavlinkReader(str(path), raw=suffix == ".raw")
    reader.replay()
    return reader


def test_seeds_hold_decodable_messages() -> None:
    assert len(MESSAGES) >= 5, [m.get_type() for m in MESSAGES]
    reader = _replay(CORPUS[0], ".tlog")
    assert sum(reader.messages.values()) > 0


@fuzz_settings
@given(fuzz_bytes(CORPUS), st.sampled_from((".raw", ".tlog")))
def test_replaying_any_bytes_never_raises(data: bytes, suffix: str) -> None:
    reader = _replay(data, suffix)
    assert reader.errors >= 0 and reader.bad_data >= 0
    for system_id in reader.vehicles():
        state = reader.state(system_id)
        assert state is not None
        _assert_finite(state.model_dump())


def _assert_finite(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        assert not isinstance(value, float) or math.isfinite(value), f"{name} = {value}"


_EXTREMES = st.sampled_from((math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324))


@fuzz_settings
@given(st.sampled_from(MESSAGES or [None]), st.data())
def test_extreme_field_values_never_become_non_finite_state(message: Any, data: st.DataObject) -> None:
    if message is None:
        return
    reader = MavlinkReader(str(WORK / "live.tlog"))
    forged = mavutil.mavlink.MAVLink(None).decode(message.get_msgbuf())  # a private copy to change
    for name, kind in zip(forged.get_fieldnames(), forged.fieldtypes, strict=True):
        if not data.draw(st.booleans()):
            continue
        current = getattr(forged, name)
        if kind in ("float", "double"):
            value = data.draw(_EXTREMES) if not isinstance(current, list) else [data.draw(_EXTREMES)] * len(current)
        elif kind.startswith(("int", "uint")) and not isinstance(current, list | bytes | str):
            bits = int("".join(c for c in kind if c.isdigit()))
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if kind.startswith("int") else (0, (1 << bits) - 1)
            value = data.draw(st.sampled_from((lo, hi, 0, 1, -1 if lo else 1)))
        else:
            continue
        setattr(forged, name, value)
    reader.process(forged)  # counted as an error at worst, never raised
    for system_id in reader.vehicles():
        _assert_finite(reader.state(system_id).model_dump())
