"""Writing received messages: idempotent event inserts and last-writer-wins state upserts.

All statements are generated from the table definitions with the dialect's own insert construct
("insert … on conflict …"), so SQLite and PostgreSQL share the semantics and this code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ground_station.store.records import Received
from ground_station.store.schema import events, node_availability, stream_health
from smarteye.wire.messages import DetectionEvent, NodeAvailability, StreamStatus

EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in events.columns)


def _insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect-specific INSERT (both have on_conflict_do_nothing / on_conflict_do_update)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def event_values(message: DetectionEvent, received_time: float, payload: str) -> tuple[Any, ...]:
    """The `events` row of one message, in EVENT_COLUMNS order (hot path: plain attribute reads)."""
    box = message.box
    norm = message.box_norm
    return (
        message.id,
        message.event_id,
        message.seq,
        message.type.value,
        message.node,
        message.stream,
        message.track_id,
        message.label,
        message.class_id,
        message.score,
        message.top_score,
        box.x1,
        box.y1,
        box.x2,
        box.y2,
        norm.x1,
        norm.y1,
        norm.x2,
        norm.y2,
        message.frame_width,
        message.frame_height,
        message.capture_time,
        message.publish_time,
        received_time,
        message.model,
        message.end_reason.value if message.end_reason is not None else None,
        payload,
    )


def _sqlite_insert_sql() -> str:
    stmt = sqlite.insert(events).on_conflict_do_nothing(index_elements=["id"])
    return str(stmt.compile(dialect=sqlite.dialect(paramstyle="qmark"), column_keys=list(EVENT_COLUMNS)))


# PostgreSQL type of every events column, in EVENT_COLUMNS order ("text", "integer", "double precision").
_PG_TYPES: tuple[str, ...] = tuple(c.type.compile(dialect=postgresql.dialect()).lower() for c in events.columns)


def _postgresql_unnest_sql() -> str:
    arrays = ", ".join(f"%b::{pg_type}[]" for pg_type in _PG_TYPES)
    return (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    )


_SQLITE_INSERT = _sqlite_insert_sql()
_POSTGRESQL_UNNEST = _postgresql_unnest_sql()
_POSTGRESQL_COPY = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

# Binary COPY sends each value in its column's exact wire format, with no server-side cast to refuse
# an out-of-range integer, and psycopg's int4 dumper silently wraps one (2**31 arrives as -2**31).  So
# integer columns are range-checked here first; a batch that fails the check (or a schema with a type
# not listed) takes the INSERT path, where the server refuses the value as it always did.
_INT_LIMITS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
_COPY_INTS: tuple[tuple[int, int], ...] = tuple(
    (i, _INT_LIMITS[t]) for i, t in enumerate(_PG_TYPES) if t in _INT_LIMITS
)
COPY_SUPPORTED = set(_PG_TYPES) <= {"text", "double precision", *_INT_LIMITS}
_UNIQUE_VIOLATION = "23505"  # SQLSTATE


class DuplicateEventError(Exception):
    """The COPY of `insert_events(assume_new=True)` met an id that is stored already; the transaction
    is aborted (the caller rolls it back and writes the batch again without assume_new)."""


def insert_events(
    conn: Connection, received: Iterable[Received], *, assume_new: bool = False, whole_transaction: bool = False
) -> int:
    """Insert event messages, skipping ids already stored (or repeated in the batch); returns how many were new.

    The semantics are the same everywhere ("insert … on conflict (id) do nothing"); how the rows
    travel is tuned per driver because this is the ingest hot path (client CPU per row, measured
    while writing scripts/benchmark_ingest.py):
    * SQLite: the driver's executemany, whose rowcount counts only inserted rows (16 µs/row,
      against 29 µs through SQLAlchemy's multi-row VALUES);
    * PostgreSQL (psycopg 3, see engine.py), `assume_new`: a binary COPY straight into the table
      (~3 µs/row on the client, and the least server work: no unnest, no speculative insertion).
      COPY cannot skip a stored id, so one makes it fail with DuplicateEventError and the caller
      rolls back and writes the batch again without `assume_new`: worth it because redeliveries are
      rare (after a reconnect) and come in runs (the caller stops assuming until they are over).
      With `whole_transaction` (these events are all the caller's transaction writes, and nothing
      was executed in it yet) the COPY runs in autocommit mode, so it commits as it completes
      (durably: synchronous_commit stays on): that saves the BEGIN and COMMIT round trips, and
      each round trip costs the writer thread far more than its latency while the network thread
      holds the GIL (it waits for its turn, up to sys.getswitchinterval(), 5 ms);
    * PostgreSQL otherwise: one array per column, sent in binary and unnested by the server with
      ON CONFLICT DO NOTHING (~11 µs/row; SQLAlchemy's multi-row VALUES managed only ~3,000 rows/s
      because psycopg re-parses its ~27 parameters per row on every batch).
    """
    rows: dict[str, tuple[Any, ...]] = {}
    for item in received:
        message = item.message
        assert isinstance(message, DetectionEvent)
        if message.id not in rows:
            rows[message.id] = event_values(message, item.received_time, item.payload)
    if not rows:
        return 0
    values = list(rows.values())
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql(_SQLITE_INSERT, values).rowcount  # type: ignore[arg-type]
    if assume_new and COPY_SUPPORTED and _ints_fit(values):
        return _copy_events(conn, values, autocommit=whole_transaction)
    return _insert_events_unnest(conn, values)


def _ints_fit(rows: list[tuple[Any, ...]]) -> bool:
    """True if every integer of `rows` fits its column (see _COPY_INTS)."""
    for i, limit in _COPY_INTS:
        column = [row[i] for row in rows]
        if min(column) < -limit or max(column) >= limit:
            return False
    return True


def _driver_error(conn: Connection, statement: str, error: Exception) -> sa.exc.DBAPIError:
    """An error raised by psycopg itself, wrapped as SQLAlchemy would (DataError, OperationalError, …)."""
    return sa.exc.DBAPIError.instance(statement, None, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect)


def _copy_events(conn: Connection, rows: list[tuple[Any, ...]], *, autocommit: bool) -> int:
    driver_connection = conn.connection.driver_connection
    assert driver_connection is not None
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        if autocommit:  # psycopg: allowed only outside a transaction, i.e. before its lazy BEGIN
            driver_connection.autocommit = True
        with driver_connection.cursor() as cursor, cursor.copy(_POSTGRESQL_COPY) as copy:
            copy.set_types(_PG_TYPES)
            for row in rows:
                copy.write_row(row)
    except dbapi_error as error:
        if getattr(error, "sqlstate", None) == _UNIQUE_VIOLATION:
            raise DuplicateEventError(str(error).splitlines()[0]) from error
        raise _driver_error(conn, _POSTGRESQL_COPY, error) from error
    finally:
        if autocommit:
            with contextlib.suppress(dbapi_error):  # only fails on a broken connection, dropped by the caller
                driver_connection.autocommit = False
    return len(rows)


def _insert_events_unnest(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    driver_connection = conn.connection.driver_connection
    assert driver_connection is not None
    columns = [list(column) for column in zip(*rows, strict=True)]
    try:
        with driver_connection.cursor() as cursor:
            cursor.execute(_POSTGRESQL_UNNEST, columns)
            return len(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error as error:
        raise _driver_error(conn, _POSTGRESQL_UNNEST, error) from error


def upsert_statuses(conn: Connection, received: Sequence[Received]) -> None:
    """Keep the latest status per stream; an older status (by the node's `time`) never overwrites a newer."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in received:
        m = item.message
        assert isinstance(m, StreamStatus)
        key = (m.node, m.stream)
        if key in latest and latest[key]["time"] > m.time:
            continue
        latest[key] = {
            "node": m.node,
            "stream": m.stream,
            "state": m.state.value,
            "reason": m.reason,
            "url": m.url,
            "source_kind": m.source_kind,
            "width": m.width,
            "height": m.height,
            "fps": m.fps,
            "processed_fps": m.processed_fps,
            "frames": m.frames,
            "processed": m.processed,
            "dropped": m.dropped,
            "reconnects": m.reconnects,
            "latency_ms": m.latency_ms,
            "last_frame_time": m.last_frame_time,
            "time": m.time,
            "last_seen": item.received_time,
            "payload": item.payload,
        }
    if not latest:
        return
    stmt = _insert(conn, stream_health)
    stmt = stmt.on_conflict_do_update(
        index_elements=["node", "stream"],
        set_={c.name: stmt.excluded[c.name] for c in stream_health.columns if not c.primary_key},
        where=stream_health.c.time <= stmt.excluded.time,
    )
    conn.execute(stmt, list(latest.values()))


def upsert_availability(conn: Connection, received: Sequence[Received]) -> None:
    """Keep the latest availability per node.

    Ordered by the node's `time` when both sides have one; the last will has none (the broker
    sends it), so it always applies: comparing the node's clock with ours could drop an `offline`.
    """
    latest: dict[str, dict[str, Any]] = {}
    for item in received:
        m = item.message
        assert isinstance(m, NodeAvailability)
        latest[m.node] = {"node": m.node, "state": m.state, "time": m.time, "last_seen": item.received_time}
    if not latest:
        return
    stmt = _insert(conn, node_availability)
    old, new = node_availability.c.time, stmt.excluded.time
    stmt = stmt.on_conflict_do_update(
        index_elements=["node"],
        set_={"state": stmt.excluded.state, "time": new, "last_seen": stmt.excluded.last_seen},
        where=sa.or_(old.is_(None), new.is_(None), old <= new),
    )
    conn.execute(stmt, list(latest.values()))


def clear_state(conn: Connection, streams: Iterable[tuple[str, str]], nodes: Iterable[str]) -> None:
    """Forget streams / nodes whose retained state was cleared on the broker (an empty retained message)."""
    for node, stream in streams:
        conn.execute(sa.delete(stream_health).where(stream_health.c.node == node, stream_health.c.stream == stream))
    for node in nodes:
        conn.execute(sa.delete(node_availability).where(node_availability.c.node == node))
