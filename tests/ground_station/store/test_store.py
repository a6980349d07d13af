"""The ground station store on a real SQLite file and a real PostgreSQL (a private schema per test)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from ground_station.config import GroundStationConfig
from ground_station.store import SCHEMA_VERSION, BadCursorError, Count, Received, Store
from ground_station.store.migrations import SchemaTooNewError
from ground_station.store.schema import schema_version
from smarteye.sim.postgres import postgres_schema
from smarteye.wire.messages import EventType, SourceState
from tests.support.factories import make_availability, make_event, make_status

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
HOUR = 3600.0


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened


def received(message, at: float | None = None) -> Received:  # type: ignore[no-untyped-def]
    return Received(message, time.time() if at is None else at, message.model_dump_json())


def test_schema_created_with_wal_on_sqlite(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"events", "stream_health", "node_availability", "schema_version"} <= tables
        if store.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_reopen_keeps_data_and_refuses_a_newer_schema(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.write([received(make_event("a"))]) == 1
    with Store(db_url) as store:  # migrating again is a no-op
        assert store.count_events() == 1
        with store.engine.begin() as conn:
            conn.execute(sa.insert(schema_version), {"version": SCHEMA_VERSION + 1, "applied_time": time.time()})
    with pytest.raises(SchemaTooNewError, match="upgrade"):
        Store(db_url)


def test_insert_is_idempotent_on_message_id(store: Store) -> None:
    first = [received(make_event(f"e{i}")) for i in range(10)]
    assert store.write(first) == 10
    # A redelivered batch, with two new messages and one repeated inside the batch itself.
    again = [*first, received(make_event("e10")), received(make_event("e11")), received(make_event("e11"))]
    assert store.write(again) == 2
    assert store.count_events() == 12
    assert store.write([]) == 0


def test_stored_event_round_trips_the_message(store: Store) -> None:
    message = make_event("obj", 3, label="car", score=0.61, capture_time=T0 + 1.5, type=EventType.END)
    item = received(message, at=T0 + 2)
    store.write([item])
    stored = store.get_event("obj:3")
    assert stored is not None
    assert stored.payload == item.payload
    assert stored.message() == message
    assert (stored.event_id, stored.seq, stored.type, stored.label) == ("obj", 3, "end", "car")
    assert (stored.node, stored.stream, stored.end_reason) == ("node1", "cam1", "gone")
    assert stored.box == message.box and stored.box_norm == message.box_norm
    assert (stored.capture_time, stored.publish_time, stored.received_time) == (T0 + 1.5, T0 + 1.54, T0 + 2)
    assert store.get_event("nope:0") is None


def test_query_filters(store: Store) -> None:
    messages = [
        make_event("p1", node="n1", stream="a", label="person", score=0.9, capture_time=T0 + 1),
        make_event("p1", 1, node="n1", stream="a", label="person", score=0.4, top_score=0.9, capture_time=T0 + 2),
        make_event("c1", node="n1", stream="b", label="car", score=0.7, capture_time=T0 + 3),
        make_event("c2", node="n2", stream="a", label="car", score=0.5, capture_time=T0 + 4),
        make_event("t1", node="n2", stream="a", label="truck", score=0.3, capture_time=T0 + 5),
    ]
    store.write([received(m) for m in messages])

    def ids(**filters: object) -> list[str]:
        return [e.id for e in store.query_events(**filters).events]  # type: ignore[arg-type]

    assert ids() == ["t1:0", "c2:0", "c1:0", "p1:1", "p1:0"]  # newest capture first
    assert ids(since=T0 + 2, until=T0 + 4) == ["c1:0", "p1:1"]  # until is exclusive
    assert ids(node="n2") == ["t1:0", "c2:0"]
    assert ids(node="n1", stream="a") == ["p1:1", "p1:0"]
    assert ids(label="car") == ["c2:0", "c1:0"]
    assert ids(label=["car", "truck"], node="n2") == ["t1:0", "c2:0"]
    assert ids(min_score=0.5) == ["c2:0", "c1:0", "p1:0"]
    assert ids(min_top_score=0.9) == ["p1:1", "p1:0"]
    assert ids(type="update") == ["p1:1"]
    assert ids(label="dog") == []
    with pytest.raises(TypeError, match=r"unknown filter\(s\): labl "):  # a misspelt filter is no filter left out
        ids(labl="car")
    assert store.count_events(label="car") == 2
    assert store.count_events(since=T0 + 3) == 3


def test_paging_is_stable_and_complete(store: Store) -> None:
    # 25 messages, several sharing a capture time so that the id must break ties.
    store.write([received(make_event(f"e{i:02d}", capture_time=T0 + i // 3)) for i in range(25)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.query_events(limit=10, cursor=cursor)
        seen += [e.id for e in page.events]
        pages += 1
        # A message arriving between pages must not shift the later ones (no OFFSET paging).
        if pages == 1:
            store.write([received(make_event("late", capture_time=T0 + 100))])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25
    expected = sorted((f"e{i:02d}:0" for i in range(25)), key=lambda i: (int(i[1:3]) // 3, i), reverse=True)
    assert seen == expected
    assert len(store.query_events(limit=5, label="person", cursor=None).events) == 5
    with pytest.raises(BadCursorError):
        store.query_events(cursor="not-a-cursor")


def test_postgresql_refusal_surfaces_as_sqlalchemy_data_error(pg_admin_url: str) -> None:
    """PostgreSQL text cannot hold NUL; the fast insert path must raise what SQLAlchemy would."""
    with postgres_schema(pg_admin_url) as url, Store(url) as store:
        with pytest.raises(sa.exc.DataError):
            store.write([received(make_event("nul", label="per\x00son"))])
        assert store.write([received(make_event("fine"))]) == 1  # the connection is usable afterwards


def test_event_messages_in_lifecycle_order(store: Store) -> None:
    store.write([received(make_event("obj", seq)) for seq in (2, 0, 3, 1)])
    store.write([received(make_event("other"))])
    assert [e.seq for e in store.event_messages("obj")] == [0, 1, 2, 3]
    assert store.event_messages("missing") == []


def test_stats_per_label_stream_and_hour(store: Store) -> None:
    store.write(
        [
            received(make_event("a", 0, label="person", capture_time=T0 + 10)),
            received(make_event("a", 1, label="person", capture_time=T0 + 20)),
            received(make_event("b", 0, label="car", stream="cam2", capture_time=T0 + HOUR)),
            received(make_event("c", 0, label="car", node="node2", capture_time=T0 + 2 * HOUR + 5)),
            received(make_event("d", 0, label="dog", capture_time=T0 + 10 * HOUR)),  # outside the range
        ]
    )
    stats = store.stats(since=T0, until=T0 + 3 * HOUR)
    assert stats.total == Count(messages=4, objects=3)
    assert stats.by_label == {"car": Count(2, 2), "person": Count(2, 1)}
    assert stats.by_stream == {
        ("node1", "cam1"): Count(2, 1),
        ("node1", "cam2"): Count(1, 1),
        ("node2", "cam1"): Count(1, 1),
    }
    hour0 = (T0 // HOUR) * HOUR
    assert stats.by_hour == [(hour0, Count(2, 1)), (hour0 + HOUR, Count(1, 1)), (hour0 + 2 * HOUR, Count(1, 1))]
    assert store.stats(node="node2").total == Count(1, 1)
    assert store.stats(since=T0 + 100 * HOUR).total == Count(0, 0)


def test_health_keeps_the_latest_state(store: Store) -> None:
    store.write([received(make_status("n1", "cam1", time=T0 + 10)), received(make_availability("n1", time=T0))])
    # An older status arriving late (e.g. via another aggregator) must not overwrite the newer one.
    store.write([received(make_status("n1", "cam1", state=SourceState.RECONNECTING, time=T0 + 5))])
    store.write([received(make_status("n1", "cam2", state=SourceState.FAILED, time=T0 + 7))])
    health = store.health()
    assert [(h.node, h.stream, h.state, h.node_state) for h in health] == [
        ("n1", "cam1", "live", "online"),
        ("n1", "cam2", "failed", "online"),
    ]
    assert health[1].reason == "connection refused" and health[0].latency_ms == 42.0

    # The broker-sent last will has no time: it must win over an `online` stamped by the node's clock.
    store.write([received(make_availability("n1", "offline", time=None))])
    store.write([received(make_status("n2", "cam1", time=T0))])  # a node that never announced itself
    assert [(n.node, n.state, n.time) for n in store.nodes()] == [("n1", "offline", None)]
    assert [h.node_state for h in store.health()] == ["offline", "offline", None]

    # Cleared retained state (an empty retained message) forgets the stream / node.
    store.write([], cleared_streams=[("n1", "cam2")], cleared_nodes=["n1"])
    assert [(h.node, h.stream) for h in store.health()] == [("n1", "cam1"), ("n2", "cam1")]
    assert store.nodes() == []


def test_retention_by_age_and_count(store: Store) -> None:
    now = T0 + 100 * 86400
    old = [received(make_event(f"old{i}"), at=now - 40 * 86400 + i) for i in range(5)]
    recent = [received(make_event(f"new{i}"), at=now - 3600 + i) for i in range(10)]
    store.write(old + recent)
    result = store.purge(max_age_s=30 * 86400, now=now)
    assert (result.by_age, result.by_count) == (5, 0)
    assert store.count_events() == 10
    result = store.purge(max_events=4, now=now)
    assert (result.by_age, result.by_count, result.total) == (0, 6, 6)
    assert sorted(e.id for e in store.query_events().events) == [f"new{i}:0" for i in range(6, 10)]
    assert store.purge(max_age_s=30 * 86400, max_events=4, now=now).total == 0


def test_retention_deletes_in_chunks(store: Store) -> None:
    store.write([received(make_event(f"e{i}"), at=T0 + i) for i in range(25)])
    from ground_station.store.retention import purge

    assert purge(store.engine, max_events=3, chunk=7).by_count == 22
    assert purge(store.engine, max_age_s=1, now=T0 + 24.5, chunk=1).by_age == 2
    assert [e.id for e in store.query_events().events] == ["e24:0"]


# ------------------------------------------------------------------ configuration


def test_config_defaults_and_url_expansion() -> None:
    config = GroundStationConfig()
    assert config.database_url == f"sqlite:///{Path('~').expanduser()}/.local/share/smarteye/ground-station.sqlite"
    assert (config.share_group, config.retention_days, config.batch_size, config.queue_max) == (None, 30, 500, 20_000)
    pg = GroundStationConfig(database_url="postgresql+psycopg://user:secret@db.local/smarteye")
    assert pg.redacted_database_url == "postgresql+psycopg://user:***@db.local/smarteye"
    plain = GroundStationConfig(database_url="postgresql://db.local/smarteye")
    assert plain.database_url == "postgresql+psycopg://db.local/smarteye"
    for field in GroundStationConfig.model_fields.values():
        assert field.title and field.description


@pytest.mark.parametrize(
    "overrides",
    [
        {"database_url": "mysql://db/x"},
        {"database_url": "not a url"},
        {"database_url": "postgresql+psycopg2://db/x"},
        {"database_url": "sqlite+pysqlcipher:///x.db"},
        {"share_group": "a/b"},
        {"batch_size": 100, "queue_max": 10},
        {"unknown": 1},
    ],
)
def test_config_rejects(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GroundStationConfig(**overrides)  # type: ignore[arg-type]


def test_config_hides_database_password_in_errors() -> None:
    with pytest.raises(ValidationError) as info:
        GroundStationConfig(database_url="oracle://user:hunter2@db/x")
    assert "hunter2" not in str(info.value)


# ------------------------------------------------------------------ PostgreSQL ingest fast path


def _autocommit(store: Store) -> bool:
    conn = store._write_conn
    assert conn is not None
    return bool(conn.connection.driver_connection.autocommit)  # type: ignore[union-attr]


def test_postgresql_copy_falls_back_on_redeliveries_and_returns(pg_url: str) -> None:
    """New events are COPied; a batch with an id already stored (a redelivery) is written again with
    ON CONFLICT, and COPY resumes once a batch comes without one.  The count is right either way."""
    from ground_station.store import writes

    assert writes.COPY_SUPPORTED, "a column type the COPY path does not range-check: see writes._INT_LIMITS"
    with Store(pg_url) as store:
        first = [received(make_event(f"c{i}")) for i in range(5)]
        assert store.write(first) == 5
        assert store._assume_new and not _autocommit(store)
        # A redelivery in an events-only batch (COPY in autocommit mode): written again with ON CONFLICT.
        status = received(make_status("node1", "cam1"))
        assert store.write([*first[:2], received(make_event("c5"))]) == 1
        assert not store._assume_new
        assert store.write([*first, received(make_event("c6")), status]) == 1  # still ON CONFLICT
        assert not store._assume_new
        assert store.write([received(make_event("c7")), received(make_event("c7"))]) == 1
        assert store._assume_new  # a batch without redeliveries: back to COPY
        # A redelivery in a mixed batch (COPY inside the transaction): rolled back, written again.
        assert store.write([received(make_event("c8")), status, first[0]]) == 1
        assert store.count_events() == 9
        assert [(h.node, h.stream) for h in store.health()] == [("node1", "cam1")]
        assert not _autocommit(store)


@pytest.mark.parametrize("track_id", [2**31, -(2**31) - 1, 2**40, 2**70])
def test_postgresql_integer_out_of_range_is_refused_not_wrapped(pg_url: str, track_id: int) -> None:
    """Binary COPY would store 2**31 as -2**31 without a word: such a batch takes the INSERT path,
    where PostgreSQL refuses the value (a DataError the aggregator counts as rejected)."""
    with Store(pg_url) as store:
        with pytest.raises(sa.exc.DataError):
            store.write([received(make_event("ok")), received(make_event("big", track_id=track_id))])
        assert store.count_events() == 0
        assert store.write([received(make_event("edge", track_id=2**31 - 1))]) == 1
        assert store.get_event("edge:0").track_id == 2**31 - 1  # type: ignore[union-attr]


def test_write_keeps_one_connection_and_replaces_it_after_an_error(db_url: str) -> None:
    with Store(db_url) as store:
        store.write([received(make_event("a"))])
        conn = store._write_conn
        assert conn is not None
        store.write([received(make_event("b")), received(make_status())])
        assert store._write_conn is conn  # no pool checkout (and PostgreSQL pre-ping) per batch
        driver = conn.connection.driver_connection
        if store.dialect == "postgresql":  # the server drops the connection (a restart, say)
            with store.engine.connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": driver.info.backend_pid})  # type: ignore[union-attr]
        else:
            driver.close()  # type: ignore[union-attr]
        with pytest.raises(sa.exc.DBAPIError):
            store.write([received(make_event("c"))])
        assert store._write_conn is None
        assert store.write([received(make_event("c"))]) == 1
        assert store.write([]) == 0
        assert store.count_events() == 3
