"""The audit log: who did what, when (rules edits, acknowledgements, resolves), written in the same
transaction as the change itself, so no change is ever missing from it."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store.queries import MAX_PAGE, BadCursorError, Names, at_least, below, match
from ground_station.store.records import AuditEntry, AuditPage
from ground_station.store.schema import audit_log

RULES_SAVE = "rules.save"
RULES_CLEAR = "rules.clear"
ALERT_ACKNOWLEDGE = "alert.acknowledge"
ALERT_RESOLVE = "alert.resolve"
WEBHOOK_RETRY = "webhook.retry"
VEHICLE_COMMAND = "vehicle.command"
LOGIN = "login"  # a successful login (actor: the user, target: the client address)
LOGIN_FAILURE = "login.failure"  # a wrong username or password (detail: the reason and the count so far)
# A live socket, video uplink or WHEP session closed because its credential was revoked or no longer allowed
# (actor: whose it was, target: what was closed, e.g. "live", "uplink e1", "whep e1/cam").
ACCESS_ENDED = "access.ended"
ACTIONS = (
    RULES_SAVE, RULES_CLEAR, ALERT_ACKNOWLEDGE, ALERT_RESOLVE, WEBHOOK_RETRY, VEHICLE_COMMAND, LOGIN, LOGIN_FAILURE,
    ACCESS_ENDED,
)  # fmt: skip


def record(
    conn: Connection, actor: str, action: str, target: str, detail: dict[str, Any], at: float | None = None
) -> None:
    """Add one entry (inside the caller's transaction)."""
    conn.execute(
        sa.insert(audit_log),
        {"time": time.time() if at is None else at, "actor": actor, "action": action, "target": target,
         "detail": json.dumps(detail, separators=(",", ":"))},
    )  # fmt: skip


def _cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(str(entry_id).encode()).decode().rstrip("=")


def _after(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursorError("invalid cursor") from None


def query_audit(
    conn: Connection,
    *,
    since: float | None = None,
    until: float | None = None,
    actor: Names = None,
    action: Names = None,
    target: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> AuditPage:
    """Entries matching every filter, newest first (ids grow with time), at most `limit` (≤ MAX_PAGE)."""
    limit = max(1, min(limit, MAX_PAGE))
    c = audit_log.c
    clauses = [
        at_least(c.time, since),
        below(c.time, until),
        match(c.actor, actor),
        match(c.action, action),
        c.target == target if target is not None else None,
        c.id < _after(cursor) if cursor is not None else None,
    ]
    stmt = sa.select(audit_log).where(*(w for w in clauses if w is not None)).order_by(c.id.desc()).limit(limit + 1)
    entries = [
        AuditEntry(id=r.id, time=r.time, actor=r.actor, action=r.action, target=r.target, detail=json.loads(r.detail))
        for r in conn.execute(stmt)
    ]
    if len(entries) <= limit:
        return AuditPage(entries, None)
    entries = entries[:limit]
    return AuditPage(entries, _cursor(entries[-1].id))
