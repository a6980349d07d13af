"""Alert confirmations: what a drone sent to look at an alert found there (one row per alert, the latest look)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store.schema import alert_confirmations


def record(conn: Connection, confirmation: dict[str, Any]) -> None:
    """Keep the latest look's result for its alert (a new look replaces the previous one)."""
    conn.execute(sa.delete(alert_confirmations).where(alert_confirmations.c.alert_id == confirmation["alert_id"]))
    conn.execute(sa.insert(alert_confirmations), confirmation)


def get(conn: Connection, alert_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(alert_confirmations).where(alert_confirmations.c.alert_id == alert_id)).first()
    return None if row is None else dict(row._mapping)
