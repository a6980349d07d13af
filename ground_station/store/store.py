"""`Store`: the one object the aggregator and the web API use to reach the database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Engine

from edge.messages import DetectionEvent, NodeAvailability, StreamStatus
from ground_station.store import queries, retention, writes
from ground_station.store.engine import create_store_engine, write_options
from ground_station.store.migrations import migrate
from ground_station.store.queries import Names
from ground_station.store.records import (
    EventPage,
    NodeState,
    PurgeResult,
    Received,
    Stats,
    StoredEvent,
    StreamHealth,
)


class Store:
    """A SQLite or PostgreSQL store of events, stream health and node availability.

    Opening it creates or migrates the schema.  Methods are thread-safe (each takes its own pooled
    connection); one writer at a time is assumed for SQLite, any number for PostgreSQL.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: Engine = create_store_engine(url, echo=echo)
        try:
            self.schema_version = migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def write(
        self,
        received: Iterable[Received],
        cleared_streams: Iterable[tuple[str, str]] = (),
        cleared_nodes: Iterable[str] = (),
    ) -> int:
        """Store a batch of received messages in one transaction; returns how many events were new.

        Events already stored (same `id`) are skipped; status and availability keep the latest
        value.  `cleared_*` forget streams/nodes whose retained state was removed from the broker.
        """
        evts: list[Received] = []
        statuses: list[Received] = []
        availability: list[Received] = []
        for item in received:
            message = item.message
            if isinstance(message, DetectionEvent):
                evts.append(item)
            elif isinstance(message, StreamStatus):
                statuses.append(item)
            elif isinstance(message, NodeAvailability):
                availability.append(item)
            else:
                raise TypeError(f"cannot store {type(message).__name__}")
        cleared_streams, cleared_nodes = list(cleared_streams), list(cleared_nodes)
        with self.engine.connect().execution_options(**write_options()) as conn, conn.begin():
            new = writes.insert_events(conn, evts)
            writes.upsert_statuses(conn, statuses)
            writes.upsert_availability(conn, availability)
            if cleared_streams or cleared_nodes:
                writes.clear_state(conn, cleared_streams, cleared_nodes)
        return new

    def purge(
        self, *, max_age_s: float | None = None, max_events: int | None = None, now: float | None = None
    ) -> PurgeResult:
        """Apply retention limits (see retention.purge)."""
        return retention.purge(self.engine, max_age_s=max_age_s, max_events=max_events, now=now)

    # ------------------------------------------------------------------ reading

    def query_events(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        node: Names = None,
        stream: Names = None,
        label: Names = None,
        type: Names = None,
        min_score: float | None = None,
        min_top_score: float | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> EventPage:
        """Newest-first page of event messages (see queries.query_events)."""
        with self.engine.connect() as conn:
            return queries.query_events(
                conn,
                since=since,
                until=until,
                node=node,
                stream=stream,
                label=label,
                type=type,
                min_score=min_score,
                min_top_score=min_top_score,
                limit=limit,
                cursor=cursor,
            )

    def count_events(self, **filters: Any) -> int:
        """How many event messages match the query_events filters (without limit/cursor)."""
        with self.engine.connect() as conn:
            return queries.count_events(conn, **filters)

    def event_messages(self, event_id: str) -> list[StoredEvent]:
        """Every stored message of one tracked object, in lifecycle order."""
        with self.engine.connect() as conn:
            return queries.event_messages(conn, event_id)

    def get_event(self, message_id: str) -> StoredEvent | None:
        """One event message by its `id`."""
        with self.engine.connect() as conn:
            return queries.get_event(conn, message_id)

    def stats(
        self, *, since: float | None = None, until: float | None = None, node: Names = None, stream: Names = None
    ) -> Stats:
        """Counts per label, per stream and per hour over a capture-time range."""
        with self.engine.connect() as conn:
            return queries.stats(conn, since=since, until=until, node=node, stream=stream)

    def health(self) -> list[StreamHealth]:
        """Latest status of every stream with its node's availability."""
        with self.engine.connect() as conn:
            return queries.health(conn)

    def nodes(self) -> list[NodeState]:
        """Latest availability of every node."""
        with self.engine.connect() as conn:
            return queries.nodes(conn)
