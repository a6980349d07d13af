"""Retention: delete event messages by age and beyond a maximum count.

Both limits use `received_time`, the ground station's own clock: an edge node with a wrong clock
(a drone without GPS time, say) must not get its fresh events purged, or kept forever.  Deletes run
in chunks, each its own short transaction, so the writer is never blocked for long.
(When snapshots are stored, their rows and files must go with their events here.)
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground_station.store.engine import write_options
from ground_station.store.records import PurgeResult
from ground_station.store.schema import events

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
    by_age = by_count = 0
    if max_age_s is not None:
        cutoff = (time.time() if now is None else now) - max_age_s
        while True:
            deleted = _delete_oldest(engine, chunk, before=cutoff)
            by_age += deleted
            if deleted < chunk:
                break
    if max_events is not None:
        with engine.connect() as conn:
            excess = int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()) - max_events
        while excess > 0:
            deleted = _delete_oldest(engine, min(chunk, excess))
            if deleted == 0:
                break
            by_count += deleted
            excess -= deleted
    return PurgeResult(by_age=by_age, by_count=by_count)
