"""What a supervisor does about an alert: acknowledge it (seen, someone is on it) and resolve it (dealt
with).  Each is done once, by one person, and recorded in the audit log in the same transaction."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store import audit
from ground_station.store.schema import alerts


class NoSuchAlertError(LookupError):
    """No alert with that id."""


class AlreadyDoneError(ValueError):
    """The alert was acknowledged (or resolved) already; the message says by whom and when."""


def _done_already(conn: Connection, alert_id: str, by: sa.Column[str | None], at: sa.Column[float | None]) -> None:
    row = conn.execute(sa.select(by, at).where(alerts.c.alert_id == alert_id)).first()
    if row is None:
        raise NoSuchAlertError(f"no alert {alert_id!r}")
    what = "resolved" if by is alerts.c.resolved_by else "acknowledged"
    raise AlreadyDoneError(f"alert {alert_id!r} was {what} by {row[0]} at {row[1]:.3f}")


def acknowledge(conn: Connection, alert_id: str, actor: str, note: str | None = None, at: float | None = None) -> None:
    """Mark the alert acknowledged by `actor` (raises NoSuchAlertError / AlreadyDoneError)."""
    now = time.time() if at is None else at
    c = alerts.c
    done = conn.execute(
        sa.update(alerts).where(c.alert_id == alert_id, c.acked_time.is_(None)).values(acked_by=actor, acked_time=now)
    ).rowcount
    if not done:
        _done_already(conn, alert_id, c.acked_by, c.acked_time)
    audit.record(conn, actor, audit.ALERT_ACKNOWLEDGE, alert_id, {"note": note}, now)


def resolve(conn: Connection, alert_id: str, actor: str, note: str | None = None, at: float | None = None) -> None:
    """Mark the alert resolved by `actor`; resolving an alert nobody acknowledged acknowledges it too."""
    now = time.time() if at is None else at
    c = alerts.c
    done = conn.execute(
        sa.update(alerts)
        .where(c.alert_id == alert_id, c.resolved_time.is_(None))
        .values(
            resolved_by=actor,
            resolved_time=now,
            acked_by=sa.func.coalesce(c.acked_by, actor),
            acked_time=sa.func.coalesce(c.acked_time, now),
        )
    ).rowcount
    if not done:
        _done_already(conn, alert_id, c.resolved_by, c.resolved_time)
    audit.record(conn, actor, audit.ALERT_RESOLVE, alert_id, {"note": note}, now)
