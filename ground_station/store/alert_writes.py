"""Writing what the nodes send about alerts: messages (dedup by `id`), the alert row (upsert by
`alert_id`, newest state wins), snapshots and clips (only for the sending node's own alerts), zone
counts, and the webhook deliveries of each new alert message, all inside the ingest batch's transaction.

Alerts are rare next to events (a handful a minute, not thousands a second), so these statements run
one row at a time: clearer than batching, and a PostgreSQL upsert may not touch one row twice in one
statement anyway (two messages of one alert in a batch).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ground_station.store.records import AlertMedia, Received
from ground_station.store.schema import alert_media, alert_messages, alerts, webhook_deliveries, zone_counts
from smarteye.wire.messages import Alert, AlertState, ZoneCounts

WebhookTargets = Callable[[Alert], Sequence[str]]  # the endpoint URLs an alert message goes to
_END = AlertState.END.value


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def alert_row(message: Alert, received_time: float, payload: str) -> dict[str, Any]:
    """The `alerts` row one message describes.

    A message outside the lifecycle (the clip's announcement, `<alert_id>:clip`, see docs/mqtt.md) repeats
    the content of the lifecycle message whose `seq` it carries (the start's): it never counts as newer, and
    an alert first seen through it is in that message's state.
    """
    clip = message.clip
    state = message.state
    if message.id != f"{message.alert_id}:{message.seq}":
        state = AlertState.START if message.seq == 0 else AlertState.UPDATE
    return {
        "alert_id": message.alert_id,
        "node": message.node,
        "stream": message.stream,
        "rule": message.rule,
        "rule_kind": message.rule_kind.value,
        "severity": message.severity.value,
        "zone": message.zone,
        "line": message.line,
        "direction": message.direction.value if message.direction is not None else None,
        "state": state.value,
        "seq": message.seq,
        "count": message.count,
        "objects": json.dumps([o.model_dump(mode="json") for o in message.objects], separators=(",", ":")),
        "line_counts": json.dumps(message.line_counts) if message.line_counts is not None else None,
        "start_time": message.start_time,
        "update_time": message.capture_time,
        "end_time": message.end_time,
        "rules_version": message.rules_version,
        "snapshot": message.snapshot,
        "clip_start": clip.start_time if clip is not None else None,
        "clip_end": clip.end_time if clip is not None else None,
        "clip_bytes": clip.bytes if clip is not None else None,
        "first_received": received_time,
        "last_received": received_time,
        "payload": payload,
    }


# Columns that describe the situation: taken from a newer message, unless the alert has ended and the
# newer message is not its `end` (the clip's `update` may come after the end: it must not reopen it).
_SITUATION = ("state", "severity", "zone", "line", "direction", "count", "objects", "line_counts", "update_time",
              "rules_version", "payload")  # fmt: skip
_CLIP = ("clip_start", "clip_end", "clip_bytes")


def _upsert_alert(conn: Connection, row: dict[str, Any]) -> None:
    stmt = _insert(conn, alerts).values(row)
    new, old = stmt.excluded, alerts.c
    newer = new.seq > old.seq
    takes = sa.and_(newer, sa.or_(old.state != _END, new.state == _END))
    clip_wins = sa.and_(new.clip_bytes.is_not(None), sa.or_(old.clip_bytes.is_(None), newer))
    set_: dict[str, Any] = {name: sa.case((takes, new[name]), else_=old[name]) for name in _SITUATION}
    set_ |= {name: sa.case((clip_wins, new[name]), else_=old[name]) for name in _CLIP}
    set_ |= {
        "seq": sa.case((newer, new.seq), else_=old.seq),
        "end_time": sa.func.coalesce(old.end_time, new.end_time),
        "snapshot": sa.or_(old.snapshot, new.snapshot),
        "start_time": sa.case((new.start_time < old.start_time, new.start_time), else_=old.start_time),
        "last_received": sa.case((new.last_received > old.last_received, new.last_received),
                                 else_=old.last_received),
    }  # fmt: skip
    # Only the node (and stream) that raised an alert may change it: an id another node reuses changes nothing.
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["alert_id"], set_=set_, where=sa.and_(old.node == new.node, old.stream == new.stream)
        )
    )


def insert_alerts(conn: Connection, received: Iterable[Received], webhook_targets: WebhookTargets | None) -> list[str]:
    """Store alert messages; returns the ids of those not stored before, in order.

    A new message updates its alert and gets one pending delivery per webhook endpoint that wants it;
    a redelivered one (same `id`) changes nothing.
    """
    new_ids: list[str] = []
    for item in received:
        message = item.message
        assert isinstance(message, Alert)
        row = {
            "id": message.id, "alert_id": message.alert_id, "seq": message.seq, "state": message.state.value,
            "node": message.node, "stream": message.stream, "capture_time": message.capture_time,
            "received_time": item.received_time, "payload": item.payload,
        }  # fmt: skip
        stmt = _insert(conn, alert_messages).values(row).on_conflict_do_nothing(index_elements=["id"])
        if conn.execute(stmt.returning(alert_messages.c.id)).first() is None:  # (psycopg's rowcount is -1 here)
            continue
        new_ids.append(message.id)
        _upsert_alert(conn, alert_row(message, item.received_time, item.payload))
        for url in webhook_targets(message) if webhook_targets is not None else ():
            delivery = {
                "url": url, "message_id": message.id, "alert_id": message.alert_id, "payload": item.payload,
                "state": "pending", "attempts": 0, "next_attempt_time": 0.0, "created_time": time.time(),
            }  # fmt: skip
            conn.execute(
                _insert(conn, webhook_deliveries)
                .values(delivery)
                .on_conflict_do_nothing(index_elements=["url", "message_id"])
            )
    return new_ids


def insert_media(conn: Connection, media: Iterable[AlertMedia]) -> list[AlertMedia]:
    """Store snapshots and clips; returns those refused because their alert belongs to another node or
    stream.  (Media may arrive before their alert's first message: stored under the sending node, they are
    served only if that node's alert with that id comes.)  A repeated one is ignored."""
    refused: list[AlertMedia] = []
    for item in media:
        owner = conn.execute(
            sa.select(alerts.c.node, alerts.c.stream).where(alerts.c.alert_id == item.alert_id)
        ).first()
        if owner is not None and (owner.node, owner.stream) != (item.node, item.stream):
            refused.append(item)
            continue
        row = {
            "alert_id": item.alert_id, "node": item.node, "kind": item.kind, "stream": item.stream,
            "received_time": time.time(), "data": item.data,
        }  # fmt: skip
        conn.execute(
            _insert(conn, alert_media).values(row).on_conflict_do_nothing(index_elements=["alert_id", "node", "kind"])
        )
    return refused


def insert_counts(conn: Connection, received: Sequence[Received]) -> None:
    """Store zone counts; a repeated one (same node, stream and time) is ignored."""
    rows = {}
    for item in received:
        m = item.message
        assert isinstance(m, ZoneCounts)
        rows[(m.node, m.stream, m.time)] = {
            "node": m.node, "stream": m.stream, "time": m.time, "zones": json.dumps(m.zones),
            "lines": json.dumps(m.lines), "rules_version": m.rules_version, "received_time": item.received_time,
        }  # fmt: skip
    if rows:
        stmt = _insert(conn, zone_counts).on_conflict_do_nothing(index_elements=["node", "stream", "time"])
        conn.execute(stmt, list(rows.values()))
