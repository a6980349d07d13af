"""Read queries for the API and UI: event listings with keyset paging, one object's history, stats, health.

Listings are newest first by (capture_time, id) and page with an opaque cursor instead of OFFSET,
so a page costs the same however deep it is and rows arriving meanwhile never shift pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store.records import Count, EventPage, NodeState, Stats, StoredEvent, StreamHealth
from ground_station.store.schema import events, node_availability, stream_health
from smarteye.wire.messages import StreamStatus

MAX_PAGE = 1000

Names = str | Sequence[str] | None


class BadCursorError(ValueError):
    """The cursor was not produced by query_events (or was corrupted on the way)."""


def encode_cursor(capture_time: float, event_message_id: str) -> str:
    raw = json.dumps([capture_time, event_message_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        capture_time, message_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise BadCursorError("invalid cursor") from None
    if not isinstance(capture_time, int | float) or not isinstance(message_id, str):
        raise BadCursorError("invalid cursor")
    return float(capture_time), message_id


def newest_first(
    conn: Connection,
    select: sa.Select[Any],
    where: list[sa.ColumnElement[bool]],
    key: tuple[sa.ColumnElement[float], sa.ColumnElement[str]],
    limit: int,
    cursor: str | None,
) -> tuple[list[sa.Row[Any]], str | None]:
    """One page of a listing ordered newest first by `key` (a time, then an id to break ties): at most `limit`
    (≤ MAX_PAGE) rows after `cursor`, and the cursor of the next page (None: this is the last)."""
    limit = max(1, min(limit, MAX_PAGE))
    time_column, id_column = key
    if cursor is not None:
        after_time, after_id = decode_cursor(cursor)
        where = [*where, sa.tuple_(time_column, id_column) < sa.tuple_(after_time, after_id)]
    stmt = select.where(*where).order_by(time_column.desc(), id_column.desc()).limit(limit + 1)
    rows = list(conn.execute(stmt))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]._mapping
    return rows[:limit], encode_cursor(last[time_column], last[id_column])


def match(column: sa.ColumnElement[Any], value: Names) -> sa.ColumnElement[bool] | None:
    """`column` is the value, or one of the values (None: no filter)."""
    if value is None:
        return None
    if isinstance(value, str):
        return column == value
    return column.in_(list(value))


def at_least(column: sa.ColumnElement[Any], value: float | None) -> sa.ColumnElement[bool] | None:
    """`column >= value` (None: no filter)."""
    return None if value is None else column >= value


def below(column: sa.ColumnElement[Any], value: float | None) -> sa.ColumnElement[bool] | None:
    """`column < value` (None: no filter)."""
    return None if value is None else column < value


class EventFilters(TypedDict, total=False):
    """Filters of an event listing or count, each optional: times are capture times, `until` exclusive;
    `label`, `node`, `stream` and `type` take one value or a list; `min_score` applies to the message's own
    score, `min_top_score` to the object's best score so far."""

    since: float | None
    until: float | None
    node: Names
    stream: Names
    label: Names
    type: Names
    min_score: float | None
    min_top_score: float | None


def check_filters(filters: Mapping[str, object], known: frozenset[str]) -> None:
    """A misspelt filter is an error, not a filter silently left out (type checkers see it; callers without
    one get this)."""
    if unknown := sorted(set(filters) - known):
        raise TypeError(f"unknown filter(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def event_filters(**filters: Unpack[EventFilters]) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses shared by listing, counting and stats."""
    check_filters(filters, EventFilters.__optional_keys__)
    c = events.c
    clauses = [
        at_least(c.capture_time, filters.get("since")),
        below(c.capture_time, filters.get("until")),
        match(c.node, filters.get("node")),
        match(c.stream, filters.get("stream")),
        match(c.label, filters.get("label")),
        match(c.type, filters.get("type")),
        at_least(c.score, filters.get("min_score")),
        at_least(c.top_score, filters.get("min_top_score")),
    ]
    return [clause for clause in clauses if clause is not None]


def query_events(
    conn: Connection, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[EventFilters]
) -> EventPage:
    """Event messages matching every filter, newest capture first, at most `limit` (≤ MAX_PAGE)."""
    key = (events.c.capture_time, events.c.id)
    rows, next_cursor = newest_first(conn, sa.select(events), event_filters(**filters), key, limit, cursor)
    return EventPage([StoredEvent(**row._mapping) for row in rows], next_cursor)


def count_events(conn: Connection, **filters: Unpack[EventFilters]) -> int:
    """How many event messages match (same filters as query_events)."""
    stmt = sa.select(sa.func.count()).select_from(events).where(*event_filters(**filters))
    return int(conn.execute(stmt).scalar_one())


def event_messages(conn: Connection, event_id: str) -> list[StoredEvent]:
    """Every stored message of one tracked object, in lifecycle order (`new`, `update`s, `end`)."""
    stmt = sa.select(events).where(events.c.event_id == event_id).order_by(events.c.seq, events.c.id)
    return [StoredEvent(**row._mapping) for row in conn.execute(stmt)]


def get_event(conn: Connection, message_id: str) -> StoredEvent | None:
    """One event message by its `id`."""
    row = conn.execute(sa.select(events).where(events.c.id == message_id)).first()
    return StoredEvent(**row._mapping) if row is not None else None


def _hour_start(conn: Connection) -> sa.ColumnElement[Any]:
    # Literal 3600 (not a bind parameter), so PostgreSQL sees the same expression in SELECT and GROUP BY.
    hour = sa.literal_column("3600")
    scaled = events.c.capture_time / hour
    if conn.dialect.name == "postgresql":
        return sa.func.floor(scaled) * hour
    return sa.cast(scaled, sa.Integer) * hour  # SQLite: truncation is floor for epoch times (> 0)


def stats(
    conn: Connection,
    *,
    since: float | None = None,
    until: float | None = None,
    node: Names = None,
    stream: Names = None,
) -> Stats:
    """Message and object counts over a capture-time range: total, per label, per stream, per hour."""
    where = event_filters(since=since, until=until, node=node, stream=stream)
    messages = sa.func.count().label("messages")
    objects = sa.func.coalesce(sa.func.sum(sa.case((events.c.type == "new", 1), else_=0)), 0).label("objects")

    def grouped(*keys: sa.ColumnElement[Any]) -> list[sa.Row[Any]]:
        stmt = sa.select(*keys, messages, objects).where(*where).group_by(*keys).order_by(*keys)
        return list(conn.execute(stmt))

    total_row = conn.execute(sa.select(messages, objects).where(*where)).one()
    hour = _hour_start(conn).label("hour")
    return Stats(
        since=since,
        until=until,
        total=Count(int(total_row.messages), int(total_row.objects)),
        by_label={r.label: Count(int(r.messages), int(r.objects)) for r in grouped(events.c.label)},
        by_stream={
            (r.node, r.stream): Count(int(r.messages), int(r.objects)) for r in grouped(events.c.node, events.c.stream)
        },
        by_hour=[(float(r.hour), Count(int(r.messages), int(r.objects))) for r in grouped(hour)],
    )


def health(conn: Connection) -> list[StreamHealth]:
    """Latest status of every stream, with its node's availability, sorted by node and stream."""
    columns = [c for c in stream_health.columns if c.name != "payload"]
    stmt = (
        sa.select(*columns, node_availability.c.state.label("node_state"))
        .select_from(stream_health.outerjoin(node_availability, stream_health.c.node == node_availability.c.node))
        .order_by(stream_health.c.node, stream_health.c.stream)
    )
    return [StreamHealth(**row._mapping) for row in conn.execute(stmt)]


def nodes(conn: Connection) -> list[NodeState]:
    """Latest availability of every node that ever announced itself, sorted by name."""
    stmt = sa.select(node_availability).order_by(node_availability.c.node)
    return [NodeState(**row._mapping) for row in conn.execute(stmt)]


def stream_status(conn: Connection, node: str, stream: str) -> StreamStatus | None:
    """The stream's latest status message as its node sent it (None: never heard of it)."""
    c = stream_health.c
    payload = conn.execute(sa.select(c.payload).where(c.node == node, c.stream == stream)).scalar()
    return StreamStatus.model_validate_json(payload) if payload is not None else None


def stream_statuses(conn: Connection) -> list[StreamStatus]:
    """Every stream's latest status message as its node sent it, by node and stream."""
    c = stream_health.c
    return [
        StreamStatus.model_validate_json(p)
        for p in conn.execute(sa.select(c.payload).order_by(c.node, c.stream)).scalars()
    ]
