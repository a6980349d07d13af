"""Fuzz target: MQTT messages into the station's parse (ground_station.ingest.parse). Any topic and payload
(random bytes, damaged seeds, valid JSON with hostile values: huge integers, NaN-like floats, NUL characters,
deep nesting, another node's name) either parses or raises Malformed with a known reason, nothing else.

Only the parse is fuzzed here; the writer's handling of what parse accepts belongs to the ingest tests."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ground_station.ingest.malformed import BAD_JSON, INTERNAL, REJECTED, SCHEMA, UNKNOWN_KIND, WRONG_TOPIC, Malformed
from ground_station.ingest.parse import MessageParser
from tests.fuzz.mutate import fuzz_bytes, fuzz_settings, seeds

REASONS = {BAD_JSON, UNKNOWN_KIND, WRONG_TOPIC, SCHEMA, REJECTED, INTERNAL}
CASES = [json.loads(seed) for seed in seeds("mqtt")]
TOPICS = [case["topic"] for case in CASES]
PAYLOADS = [base64.b64decode(case["payload_b64"]) for case in CASES]
PARSER = MessageParser("smarteye", snapshots=True, max_clip_bytes=1 << 20)


def _parse(topic: bytes, payload: bytes) -> Any:
    try:
        return PARSER.parse(topic, payload, time.time())
    except Malformed as error:
        assert error.reason in REASONS and error.detail, (error.reason, error.detail)
        return None


def test_seeds_parse() -> None:
    for topic, payload in zip(TOPICS, PAYLOADS, strict=True):
        assert _parse(topic.encode(), payload) is not None, topic


_topics = st.one_of(
    st.sampled_from(TOPICS).map(str.encode),
    fuzz_bytes([t.encode() for t in TOPICS], max_size=200),
    st.sampled_from(TOPICS).map(lambda t: t.replace("node1", "node2").encode()),
)


@fuzz_settings
@given(_topics, fuzz_bytes(PAYLOADS, max_size=2048))
def test_any_bytes_parse_or_are_malformed(topic: bytes, payload: bytes) -> None:
    _parse(topic, payload)


_HOSTILE = st.one_of(
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, -1, 0, 1e308, -1e308, "NaN", "Infinity", "\x00", "\ud800",
                     "", "x" * 10_000, True, None, [], {}, [[[[[[[[[[[]]]]]]]]]]]]),
    st.integers(), st.floats(), st.text(max_size=20),
)  # fmt: skip


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@fuzz_settings
@given(st.sampled_from([i for i, p in enumerate(PAYLOADS) if p.startswith(b"{")]), st.data())
def test_valid_json_with_hostile_values_parses_or_is_malformed(index: int, data: st.DataObject) -> None:
    document = json.loads(PAYLOADS[index])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        document = _replace(document, path, data.draw(_HOSTILE))
    try:
        payload = json.dumps(document, allow_nan=True).encode()
    except (ValueError, RecursionError):
        return
    _parse(TOPICS[index].encode(), payload)
