"""No message can poison the writer: whatever one message holds (integers SQLite cannot store, lone
surrogates, huge strings, invalid UTF-8, wrong types), it is counted by reason and skipped, never retried,
and the valid messages around it are stored.  Real parser, real writer, real SQLite store; the hand-off is
filled the way the network thread fills it (parse, then one item per PUBLISH)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ground_station.config import GroundStationConfig
from ground_station.ingest.malformed import INTERNAL, REJECTED
from ground_station.ingest.parse import MessageParser
from ground_station.ingest.writer import is_outage
from ground_station.store import Store
from tests.support.factories import make_event
from tests.support.writer_run import item_for, run_writer

pytestmark = pytest.mark.timeout(120)

PREFIX = "smarteye/v1"


def event_payload(event_id: str, **fields: Any) -> bytes:
    message = json.loads(make_event(event_id).model_dump_json())
    message.update(fields)
    return json.dumps(message).encode()


def test_an_integer_sqlite_cannot_store_is_rejected_and_the_others_stored(tmp_path: Path) -> None:
    """Issue 12: track_id = 2**63 raised OverflowError, not classed as bad data: the batch was retried forever."""
    config = GroundStationConfig.model_validate({"database_url": f"sqlite:///{tmp_path}/g.sqlite", "batch_linger_s": 0})
    parser = MessageParser(PREFIX, snapshots=True)
    topic = f"{PREFIX}/node1/events/cam1"
    payloads = [event_payload(f"ok{i}") for i in range(10)]
    payloads.insert(4, event_payload("huge", track_id=2**63))
    payloads.insert(7, event_payload("tiny", frame_width=-(2**70)))
    with Store(config.database_url) as store:
        items = [item_for(parser, topic, p, i) for i, p in enumerate(payloads)]
        writer, acked, errors = run_writer(config, store, items)
        assert store.count_events() == 10
        assert sorted(acked) == list(range(12))  # the poison is acknowledged too: the broker must not send it again
        assert writer._malformed.counts() == {REJECTED: 2}
        assert errors == []  # bad data is no outage: nothing was retried


def test_only_outages_are_retried() -> None:
    import sqlite3

    import sqlalchemy as sa

    def wrapped(orig: BaseException, cls: type[sa.exc.DBAPIError] = sa.exc.OperationalError) -> BaseException:
        return cls("INSERT …", {}, orig)  # type: ignore[arg-type]

    assert is_outage(wrapped(sqlite3.OperationalError("database or disk is full")))
    assert is_outage(wrapped(sqlite3.OperationalError("database is locked")))
    assert is_outage(wrapped(ConnectionRefusedError("connection refused")))
    assert is_outage(wrapped(ConnectionResetError("closed"), sa.exc.InterfaceError))
    assert not is_outage(wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), sa.exc.IntegrityError))
    assert not is_outage(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert not is_outage(ValueError("bad"))
    assert not is_outage(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))


# --- the property: valid messages are stored around any payload --------------------------------------------

EXTREME_INTS = st.one_of(
    st.integers(),
    st.sampled_from([2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64, 10**40, -(10**40)]),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(["\x00", "\ud800", "\udfff", "\ufffe", "é", "𝄞"]), max_size=8),
    st.integers(min_value=60_000, max_value=400_000).map(lambda n: "x" * n),
)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), EXTREME_INTS, st.floats(allow_nan=False, allow_infinity=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
EVENT_FIELDS = sorted(json.loads(make_event("x").model_dump_json()))


@st.composite
def hostile_payload(draw: st.DrawFn) -> bytes:
    """A payload for an events topic: a valid event with some fields replaced, or raw bytes."""
    shape = draw(st.sampled_from(["fields", "fields", "fields", "bytes", "broken_utf8"]))
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    payload = event_payload(draw(st.text(min_size=1, max_size=80)))
    if shape == "fields":
        message = json.loads(payload)
        for name in draw(st.lists(st.sampled_from(EVENT_FIELDS), min_size=1, max_size=4, unique=True)):
            message[name] = draw(JSON_VALUE)
        text = json.dumps(message, ensure_ascii=draw(st.booleans()))
        return text.encode("utf-8", "surrogatepass")
    cut = draw(st.integers(min_value=1, max_value=len(payload) - 1))
    return payload[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + payload[cut:]


@given(payloads=st.lists(hostile_payload(), min_size=1, max_size=6))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_the_writer_stores_valid_messages_around_any_payload(tmp_path: Path, payloads: list[bytes]) -> None:
    url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.sqlite"
    config = GroundStationConfig.model_validate(
        {"database_url": url, "batch_linger_s": 0, "batch_size": 4, "retention_days": None}
    )
    parser = MessageParser(PREFIX, snapshots=True)
    topic = f"{PREFIX}/node1/events/cam1"
    valid = [event_payload(f"valid{i}") for i in range(len(payloads) + 1)]
    mixed = [p for pair in zip(valid, [*payloads, None], strict=True) for p in pair if p is not None]
    items = [item_for(parser, topic, p, mid) for mid, p in enumerate(mixed)]
    with Store(config.database_url) as store:
        writer, acked, errors = run_writer(config, store, items)
        assert errors == [], errors  # nothing was taken for an outage
        assert INTERNAL not in writer._malformed.counts()  # every failure was classed (no bug path)
        assert sorted(acked) == list(range(len(mixed)))  # every message answered, in its turn
        assert all(store.event_messages(f"valid{i}") for i in range(len(valid)))


def test_a_bug_on_one_message_is_counted_as_internal_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class BuggyStore(Store):
        def write_batch(self, received: Any, *args: Any, **kwargs: Any) -> Any:
            received = list(received)
            if any(item.message.label == "bug" for item in received):
                raise RuntimeError("a bug in the store")
            return super().write_batch(received, *args, **kwargs)

    config = GroundStationConfig.model_validate({"database_url": f"sqlite:///{tmp_path}/g.sqlite", "batch_linger_s": 0})
    parser = MessageParser(PREFIX, snapshots=True)
    topic = f"{PREFIX}/node1/events/cam1"
    payloads = [event_payload(f"ok{i}", label="bug" if i % 4 == 0 else "person") for i in range(12)]
    with BuggyStore(config.database_url) as store:
        writer, acked, errors = run_writer(
            config, store, [item_for(parser, topic, p, i) for i, p in enumerate(payloads)]
        )
        assert store.count_events() == 9 and errors == [] and sorted(acked) == list(range(12))
        assert writer._malformed.counts() == {INTERNAL: 3}
    assert sum(r.exc_info is not None for r in caplog.records) == 1  # one traceback, not one per message
