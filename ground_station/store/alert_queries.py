"""Read queries on alerts: newest-first listings with keyset paging and filters, one alert with its
history, its snapshot and clip, and a stream's zone counts over time."""

from __future__ import annotations

import json
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store.queries import Names, at_least, below, check_filters, match, newest_first
from ground_station.store.records import AlertMessageInfo, AlertPage, CountsPoint, StoredAlert
from ground_station.store.schema import alert_media, alert_messages, alerts, zone_counts
from smarteye.wire.messages import AlertClip, AlertObject

SNAPSHOT, CLIP = "snapshot", "clip"
MAX_COUNTS_POINTS = 10_000


def _has_media(kind: str) -> sa.ColumnElement[bool]:
    """Whether the alert's own node sent this kind of media for it."""
    m = alert_media.c
    return (
        sa.select(m.alert_id)
        .where(m.alert_id == alerts.c.alert_id, m.node == alerts.c.node, m.kind == kind)
        .exists()
        .label(f"has_{kind}")
    )


def _stored(row: sa.Row[Any]) -> StoredAlert:
    values = dict(row._mapping)
    values.pop("payload", None)
    values["objects"] = [AlertObject.model_validate(o) for o in json.loads(values["objects"])]
    if values["line_counts"] is not None:
        values["line_counts"] = json.loads(values["line_counts"])
    start, end, size = values.pop("clip_start"), values.pop("clip_end"), values.pop("clip_bytes")
    values["clip"] = AlertClip(start_time=start, end_time=end, bytes=size) if size is not None else None
    values["snapshot"] = bool(values["snapshot"])
    values["has_snapshot"] = bool(values["has_snapshot"])
    values["has_clip"] = bool(values["has_clip"])
    return StoredAlert(**values)


def _select() -> sa.Select[Any]:
    return sa.select(alerts, _has_media(SNAPSHOT), _has_media(CLIP))


class AlertFilters(TypedDict, total=False):
    """Filters of an alert listing or count, each optional: `since`/`until` bound the start time (`until`
    exclusive); the names take one value or a list; `acknowledged`/`resolved` True or False select by
    whether it was."""

    since: float | None
    until: float | None
    node: Names
    stream: Names
    rule: Names
    severity: Names
    state: Names
    acknowledged: bool | None
    resolved: bool | None


def _done(column: sa.ColumnElement[Any], done: bool | None) -> sa.ColumnElement[bool] | None:
    """Whether the time of an action (`acked_time`, `resolved_time`) is set (None: no filter)."""
    return None if done is None else column.is_not(None) if done else column.is_(None)


def alert_filters(**filters: Unpack[AlertFilters]) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses of a listing or count."""
    check_filters(filters, AlertFilters.__optional_keys__)
    c = alerts.c
    clauses = [
        at_least(c.start_time, filters.get("since")),
        below(c.start_time, filters.get("until")),
        match(c.node, filters.get("node")),
        match(c.stream, filters.get("stream")),
        match(c.rule, filters.get("rule")),
        match(c.severity, filters.get("severity")),
        match(c.state, filters.get("state")),
        _done(c.acked_time, filters.get("acknowledged")),
        _done(c.resolved_time, filters.get("resolved")),
    ]
    return [clause for clause in clauses if clause is not None]


def query_alerts(
    conn: Connection, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[AlertFilters]
) -> AlertPage:
    """Alerts matching every filter, newest start first, at most `limit` (≤ MAX_PAGE)."""
    key = (alerts.c.start_time, alerts.c.alert_id)
    rows, next_cursor = newest_first(conn, _select(), alert_filters(**filters), key, limit, cursor)
    return AlertPage([_stored(row) for row in rows], next_cursor)


def count_alerts(conn: Connection, **filters: Unpack[AlertFilters]) -> int:
    stmt = sa.select(sa.func.count()).select_from(alerts).where(*alert_filters(**filters))
    return int(conn.execute(stmt).scalar_one())


def get_alert(conn: Connection, alert_id: str) -> StoredAlert | None:
    row = conn.execute(_select().where(alerts.c.alert_id == alert_id)).first()
    return _stored(row) if row is not None else None


def alert_payload(conn: Connection, alert_id: str) -> str | None:
    """The alert's newest message, as received."""
    return conn.execute(sa.select(alerts.c.payload).where(alerts.c.alert_id == alert_id)).scalar()


def alert_history(conn: Connection, alert_id: str) -> list[AlertMessageInfo]:
    """The alert's messages in order (only its own node's: an id another node reused is not its history)."""
    m = alert_messages.c
    owner = sa.select(alerts.c.node).where(alerts.c.alert_id == alert_id).scalar_subquery()
    stmt = (
        sa.select(m.id, m.seq, m.state, m.capture_time, m.received_time, m.payload)
        .where(m.alert_id == alert_id, m.node == owner)
        .order_by(m.seq, m.id)
    )
    return [AlertMessageInfo(**row._mapping) for row in conn.execute(stmt)]


def get_media(conn: Connection, alert_id: str, kind: str) -> bytes | None:
    """The alert's snapshot or clip, as its own node sent it (None: not received)."""
    m = alert_media.c
    stmt = (
        sa.select(m.data)
        .select_from(alert_media.join(alerts, sa.and_(alerts.c.alert_id == m.alert_id, alerts.c.node == m.node)))
        .where(m.alert_id == alert_id, m.kind == kind)
    )
    return conn.execute(stmt).scalar()


def snapshot(conn: Connection, alert_id: str) -> bytes | None:
    """The alert's JPEG snapshot (None: not received)."""
    return get_media(conn, alert_id, SNAPSHOT)


def clip(conn: Connection, alert_id: str) -> bytes | None:
    """The alert's MP4 clip (None: not received)."""
    return get_media(conn, alert_id, CLIP)


def counts_series(
    conn: Connection,
    node: str,
    stream: str,
    *,
    since: float | None = None,
    until: float | None = None,
    limit: int = 2000,
) -> tuple[list[CountsPoint], bool]:
    """A stream's counts in [since, until), oldest first: the latest `limit` of them, and whether
    older ones were left out."""
    limit = max(1, min(limit, MAX_COUNTS_POINTS))
    c = zone_counts.c
    where = [c.node == node, c.stream == stream]
    if since is not None:
        where.append(c.time >= since)
    if until is not None:
        where.append(c.time < until)
    stmt = sa.select(c.time, c.zones, c.lines, c.rules_version).where(*where).order_by(c.time.desc()).limit(limit + 1)
    rows = list(conn.execute(stmt))
    truncated = len(rows) > limit
    points = [
        CountsPoint(time=r.time, zones=json.loads(r.zones), lines=json.loads(r.lines), rules_version=r.rules_version)
        for r in reversed(rows[:limit])
    ]
    return points, truncated
