"""Event snapshots: one JPEG per tracked object, sent by the edge with its `new` event over MQTT
(`smarteye/v1/<node>/snapshots/<stream>/<event_id>`, binary payload) and kept beside the events."""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground_station.store.engine import write_options
from ground_station.store.schema import events

MAX_SNAPSHOT_BYTES = 2_000_000
JPEG_MAGIC = b"\xff\xd8\xff"

metadata = sa.MetaData()
snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("node", sa.String(64), nullable=False),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("received_time", sa.Float, nullable=False, index=True),
    sa.Column("jpeg", sa.LargeBinary, nullable=False),
)


class SnapshotError(ValueError):
    """A snapshot payload that is not a JPEG of a sane size."""


class ForeignSnapshotError(SnapshotError):
    """A snapshot for an event of another node or stream: a node may only picture its own events."""


def _owned(event_id: sa.ColumnElement[str] | str) -> sa.ColumnElement[bool]:
    """The snapshot row's node and stream are those of its event (or the event is not stored yet):
    a snapshot is matched to its event by (node, stream, event id), never by the id alone (issue 12)."""
    foreign = sa.exists().where(
        events.c.event_id == event_id,
        sa.or_(events.c.node != snapshots.c.node, events.c.stream != snapshots.c.stream),
    )
    return ~foreign


class Snapshots:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def put(self, event_id: str, node: str, stream: str, jpeg: bytes) -> bool:
        """Store a snapshot; False when this event has one already (QoS-1 redelivery).

        Raises ForeignSnapshotError when the event is stored under another node or stream.  One sent
        before its event by another node is replaced when the event's own node sends its picture."""
        if not jpeg.startswith(JPEG_MAGIC):
            raise SnapshotError("not a JPEG")
        if len(jpeg) > MAX_SNAPSHOT_BYTES:
            raise SnapshotError(f"{len(jpeg)} bytes is over the {MAX_SNAPSHOT_BYTES} byte limit")
        # Read-then-write: take SQLite's write lock up front, or a concurrent writer makes this fail at once
        # ("database is locked") instead of waiting out the busy timeout.
        with self.engine.connect().execution_options(**write_options()) as conn, conn.begin():
            owners = set(conn.execute(sa.select(events.c.node, events.c.stream).where(events.c.event_id == event_id)
                                      .distinct()))  # fmt: skip
            if owners and (node, stream) not in owners:
                raise ForeignSnapshotError(f"event {event_id!r} is not one of {node}/{stream}'s")
            row = conn.execute(
                sa.select(snapshots.c.node, snapshots.c.stream).where(snapshots.c.event_id == event_id)
            ).first()
            if row is not None:
                if tuple(row) == (node, stream) or not owners:
                    return False
                conn.execute(snapshots.delete().where(snapshots.c.event_id == event_id))  # another node's, first
            conn.execute(snapshots.insert().values(event_id=event_id, node=node, stream=stream,
                                                   received_time=time.time(), jpeg=jpeg))  # fmt: skip
        return True

    def get(self, event_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(snapshots.c.jpeg).where(snapshots.c.event_id == event_id, _owned(event_id))
            ).scalar()

    def which_exist(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(set(event_ids))
        if not ids:
            return set()
        with self.engine.connect() as conn:
            query = sa.select(snapshots.c.event_id).where(snapshots.c.event_id.in_(ids), _owned(snapshots.c.event_id))
            return set(conn.execute(query).scalars())

    def purge(self, older_than: float) -> int:
        with self.engine.connect().execution_options(**write_options()) as conn, conn.begin():
            return conn.execute(snapshots.delete().where(snapshots.c.received_time < older_than)).rowcount
