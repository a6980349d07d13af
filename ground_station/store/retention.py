"""Retention: delete event messages by age and beyond a maximum count.

Both limits use `received_time`, the ground station's own clock: an edge node with a wrong clock
(a drone without GPS time, say) must not get its fresh events purged, or kept forever.  Deletes run
in chunks, each its own short transaction, so the writer is never blocked for long.
Alerts, their messages and media, zone counts and finished webhook deliveries follow the events'
age limit (an alert still being updated stays: its age is that of its newest message).  Rules versions
and the audit log are kept: they are small, and they are the record of who changed what.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground_station.store.engine import write_options
from ground_station.store.records import PurgeResult
from ground_station.store.schema import alert_media, alert_messages, alerts, events, webhook_deliveries, zone_counts

PURGE_CHUNK = 10_000


def _delete_oldest(engine: Engine, limit: int, before: float | None = None) -> int:
    """Delete up to `limit` of the oldest-received messages (optionally only those before `before`)."""
    oldest = sa.select(events.c.id).order_by(events.c.received_time, events.c.id).limit(limit)
    if before is not None:
        oldest = oldest.where(events.c.received_time < before)
    with engine.connect().execution_options(**write_options()) as conn, conn.begin():
        return conn.execute(sa.delete(events).where(events.c.id.in_(oldest.scalar_subquery()))).rowcount


def purge(
    engine: Engine,
    *,
    max_age_s: float | None = None,
    max_events: int | None = None,
    now: float | None = None,
    chunk: int = PURGE_CHUNK,
) -> PurgeResult:
    """Delete messages received more than `max_age_s` ago, then the oldest beyond `max_events`."""
    by_age = by_count = alert_rows = 0
    if max_age_s is not None:
        cutoff = (time.time() if now is None else now) - max_age_s
        while True:
            deleted = _delete_oldest(engine, chunk, before=cutoff)
            by_age += deleted
            if deleted < chunk:
                break
        alert_rows = purge_alert_data(engine, cutoff, chunk)
    if max_events is not None:
        with engine.connect() as conn:
            excess = int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()) - max_events
        while excess > 0:
            deleted = _delete_oldest(engine, min(chunk, excess))
            if deleted == 0:
                break
            by_count += deleted
            excess -= deleted
    return PurgeResult(by_age=by_age, by_count=by_count, alert_rows=alert_rows)


def purge_alert_data(engine: Engine, cutoff: float, chunk: int = PURGE_CHUNK) -> int:
    """Delete alert data received before `cutoff`, in chunks; returns the rows deleted."""
    d = webhook_deliveries.c
    aged: list[tuple[sa.Table, sa.ColumnElement[float], list[sa.ColumnElement[bool]]]] = [
        (alerts, alerts.c.last_received, []),
        (alert_messages, alert_messages.c.received_time, []),
        (alert_media, alert_media.c.received_time, []),
        (zone_counts, zone_counts.c.received_time, []),
        (webhook_deliveries, d.finished_time, [d.state != "pending"]),
    ]
    deleted = 0
    for table, at, extra in aged:
        key = sa.tuple_(*table.primary_key.columns)
        while True:
            oldest = sa.select(*table.primary_key.columns).where(at < cutoff, *extra).limit(chunk)
            with engine.connect().execution_options(**write_options()) as conn, conn.begin():
                done = conn.execute(sa.delete(table).where(key.in_(oldest))).rowcount
            deleted += done
            if done < chunk:
                break
    return deleted
