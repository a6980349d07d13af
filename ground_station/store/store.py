"""`Store`: the one object the aggregator and the web API use to reach the database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Connection, Engine

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
from smarteye.wire.messages import DetectionEvent, NodeAvailability, StreamStatus


class Store:
    """A SQLite or PostgreSQL store of events, stream health and node availability.

    Opening it creates or migrates the schema.  Methods are thread-safe: reads take a pooled
    connection each; `write` keeps one connection for itself (see there), so writes through one Store
    are serialised.  One writing process at a time is assumed for SQLite, any number for PostgreSQL.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: Engine = create_store_engine(url, echo=echo)
        try:
            self.schema_version = migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._write_lock = threading.Lock()
        self._write_conn: Connection | None = None
        # PostgreSQL: COPY events on the assumption that none is stored yet, until a batch proves
        # otherwise (a run of redeliveries); see writes.insert_events.
        self._assume_new = True

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def close(self) -> None:
        # A writer stuck on an unreachable database holds the lock: do not wait for it forever.
        if self._write_lock.acquire(timeout=5):
            try:
                self._drop_write_connection()
            finally:
                self._write_lock.release()
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
        if not (evts or statuses or availability or cleared_streams or cleared_nodes):
            return 0  # e.g. a batch of malformed messages: no transaction (SQLite would take its write lock)
        with self._write_lock:
            if self._assume_new:
                try:
                    return self._write(evts, statuses, availability, cleared_streams, cleared_nodes, assume_new=True)
                except writes.DuplicateEventError:
                    self._assume_new = False  # a redelivery: write the batch again, skipping what is stored
            new = self._write(evts, statuses, availability, cleared_streams, cleared_nodes, assume_new=False)
            if evts and new == len({item.message.id for item in evts}):
                self._assume_new = True  # nothing of this batch was stored before: the redeliveries are over
            return new

    def _write(
        self,
        evts: list[Received],
        statuses: list[Received],
        availability: list[Received],
        cleared_streams: list[tuple[str, str]],
        cleared_nodes: list[str],
        *,
        assume_new: bool,
    ) -> int:
        """One transaction on the write connection (caller holds _write_lock)."""
        conn = self._write_connection()
        only_events = not (statuses or availability or cleared_streams or cleared_nodes)
        try:
            with conn.begin():
                new = writes.insert_events(conn, evts, assume_new=assume_new, whole_transaction=only_events)
                writes.upsert_statuses(conn, statuses)
                writes.upsert_availability(conn, availability)
                if cleared_streams or cleared_nodes:
                    writes.clear_state(conn, cleared_streams, cleared_nodes)
        except writes.DuplicateEventError:
            raise  # rolled back; the connection is fine
        except BaseException:
            # Maybe broken (server restart, network): the next write checks a connection out of the
            # pool again, whose pre-ping replaces a dead one.
            self._drop_write_connection()
            raise
        return new

    def _write_connection(self) -> Connection:
        """The connection `write` keeps between batches: a pool checkout per batch costs a round
        trip (PostgreSQL's pre-ping) and pool bookkeeping, a measurable share at 10,000 events/s."""
        if self._write_conn is None or self._write_conn.closed or self._write_conn.invalidated:
            self._write_conn = self.engine.connect().execution_options(**write_options())
        return self._write_conn

    def _drop_write_connection(self) -> None:
        if self._write_conn is not None:
            conn, self._write_conn = self._write_conn, None
            with contextlib.suppress(Exception):  # already broken: the pool discards it
                conn.close()

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
