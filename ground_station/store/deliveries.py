"""Webhook deliveries: one row per (endpoint, alert message), created pending in the ingest transaction
and moved on by the delivery workers (delivered, or failed after the last attempt).

Several stations may share one database: a worker claims a due delivery by pushing its next attempt
time forward by a lease (a conditional update only one of them wins), so a delivery is attempted by
one of them at a time, and one whose station died mid-attempt is tried again when the lease runs out.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store import audit
from ground_station.store.queries import MAX_PAGE, below, match
from ground_station.store.records import Delivery, DeliveryPage
from ground_station.store.schema import webhook_deliveries

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)
_d = webhook_deliveries.c


def _delivery(row: sa.Row[object]) -> Delivery:
    return Delivery(**row._mapping)


def get(conn: Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(sa.select(webhook_deliveries).where(_d.id == delivery_id)).first()
    return _delivery(row) if row is not None else None


def due(conn: Connection, url: str, now: float, limit: int = 50) -> list[Delivery]:
    """Pending deliveries to `url` whose next attempt is due, oldest first."""
    stmt = (
        sa.select(webhook_deliveries)
        .where(_d.state == PENDING, _d.url == url, _d.next_attempt_time <= now)
        .order_by(_d.id)
        .limit(limit)
    )
    return [_delivery(row) for row in conn.execute(stmt)]


def next_due(conn: Connection, url: str) -> float | None:
    """When the next pending delivery to `url` is due (None: nothing pending)."""
    stmt = sa.select(sa.func.min(_d.next_attempt_time)).where(_d.state == PENDING, _d.url == url)
    return conn.execute(stmt).scalar()


def claim(conn: Connection, delivery: Delivery, lease_until: float) -> bool:
    """Take a due delivery for one attempt; False if another worker took it first."""
    return bool(
        conn.execute(
            sa.update(webhook_deliveries)
            .where(_d.id == delivery.id, _d.state == PENDING, _d.next_attempt_time == delivery.next_attempt_time)
            .values(next_attempt_time=lease_until)
        ).rowcount
    )


def succeeded(conn: Connection, delivery_id: int, status: int, at: float) -> None:
    conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.id == delivery_id)
        .values(state=DELIVERED, attempts=_d.attempts + 1, last_status=status, last_error=None, finished_time=at)
    )


def attempt_failed(
    conn: Connection, delivery_id: int, error: str, status: int | None, retry_at: float | None, at: float
) -> None:
    """Record a failed attempt: pending again at `retry_at`, or failed for good (None)."""
    values: dict[str, object] = {"attempts": _d.attempts + 1, "last_error": error[:1000], "last_status": status}
    if retry_at is None:
        values |= {"state": FAILED, "finished_time": at}
    else:
        values["next_attempt_time"] = retry_at
    conn.execute(sa.update(webhook_deliveries).where(_d.id == delivery_id).values(values))


def fail_beyond(conn: Connection, url: str, max_pending: int, at: float) -> int:
    """Mark the oldest pending deliveries to `url` failed beyond `max_pending`; returns how many."""
    keep = (
        sa.select(_d.id).where(_d.state == PENDING, _d.url == url).order_by(_d.id.desc()).limit(max_pending)
    ).scalar_subquery()
    return conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.state == PENDING, _d.url == url, _d.id.not_in(keep))
        .values(state=FAILED, finished_time=at, last_error=f"dropped: more than {max_pending} pending deliveries")
    ).rowcount


def fail_unconfigured(conn: Connection, urls: list[str], at: float) -> int:
    """Pending deliveries to endpoints no longer in the configuration fail (nobody would send them)."""
    return conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.state == PENDING, _d.url.not_in(urls))
        .values(state=FAILED, finished_time=at, last_error="endpoint no longer configured")
    ).rowcount


def retry(conn: Connection, delivery_id: int, actor: str | None = None) -> bool:
    """A failed delivery goes back to pending, due now, with its attempts counted afresh (recorded in the
    audit log when `actor` is given); False if it is not a failed delivery."""
    done = bool(
        conn.execute(
            sa.update(webhook_deliveries)
            .where(_d.id == delivery_id, _d.state == FAILED)
            .values(state=PENDING, attempts=0, next_attempt_time=0.0, finished_time=None)
        ).rowcount
    )
    if done and actor is not None:
        audit.record(conn, actor, audit.WEBHOOK_RETRY, str(delivery_id), {})
    return done


def query(
    conn: Connection,
    *,
    state: str | None = None,
    url: str | None = None,
    alert_id: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> DeliveryPage:
    """Deliveries matching every filter, newest first; page with `before_id` (the `next_cursor`)."""
    limit = max(1, min(limit, MAX_PAGE))
    clauses = [
        match(_d.state, state),
        match(_d.url, url),
        match(_d.alert_id, alert_id),
        below(_d.id, before_id),
    ]
    stmt = (
        sa.select(webhook_deliveries)
        .where(*(c for c in clauses if c is not None))
        .order_by(_d.id.desc())
        .limit(limit + 1)
    )
    rows = [_delivery(row) for row in conn.execute(stmt)]
    if len(rows) <= limit:
        return DeliveryPage(rows, None)
    return DeliveryPage(rows[:limit], str(rows[limit - 1].id))


def summary(conn: Connection) -> dict[str, dict[str, int]]:
    """Deliveries per endpoint and state."""
    stmt = sa.select(_d.url, _d.state, sa.func.count()).group_by(_d.url, _d.state)
    result: dict[str, dict[str, int]] = {}
    for url, state, count in conn.execute(stmt):
        result.setdefault(url, dict.fromkeys(STATES, 0))[state] = int(count)
    return result
