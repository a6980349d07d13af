"""`Store`: the one object the aggregator and the web API use to reach the database."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection, Engine

from ground_station.store import (
    alert_queries,
    alert_writes,
    audit,
    confirmations,
    deliveries,
    queries,
    retention,
    rules,
    supervision,
    writes,
)
from ground_station.store.alert_writes import WebhookTargets
from ground_station.store.engine import create_store_engine, write_options
from ground_station.store.migrations import migrate
from ground_station.store.records import AlertMedia, PurgeResult, Received, WriteResult
from smarteye.wire.messages import Alert, DetectionEvent, NodeAvailability, StreamStatus, ZoneCounts

P = ParamSpec("P")
R = TypeVar("R")


def _reads(query: Callable[Concatenate[Connection, P], R]) -> Callable[Concatenate[Store, P], R]:
    """`query(conn, ...)` as the Store method `store.query(...)`, on a pooled connection of its own.

    The method keeps the function's parameters and docstring, so callers and type checkers see one
    signature, written once.
    """

    @functools.wraps(query)
    def read(store: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store.engine.connect() as conn:
            return query(conn, *args, **kwargs)

    return read


def _writes(change: Callable[Concatenate[Connection, P], R]) -> Callable[Concatenate[Store, P], R]:
    """`change(conn, ...)` as a Store method, in a short write transaction of its own (see `Store._writing`)."""

    @functools.wraps(change)
    def write(store: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store._writing() as conn:
            return change(conn, *args, **kwargs)

    return write


@dataclass(slots=True)
class _Batch:
    """One ingest batch, sorted by what each part is written with."""

    cleared_streams: list[tuple[str, str]]
    cleared_nodes: list[str]
    media: list[AlertMedia]
    events: list[Received] = field(default_factory=list)
    statuses: list[Received] = field(default_factory=list)
    availability: list[Received] = field(default_factory=list)
    alerts: list[Received] = field(default_factory=list)
    counts: list[Received] = field(default_factory=list)

    @property
    def only_events(self) -> bool:
        return not (self.statuses or self.availability or self.cleared_streams or self.cleared_nodes or self.alerts
                    or self.counts or self.media)  # fmt: skip

    @property
    def empty(self) -> bool:
        return not self.events and self.only_events


class Store:
    """A SQLite or PostgreSQL store of events, stream health and node availability.

    Opening it creates or migrates the schema.  Methods are thread-safe: reads take a pooled
    connection each; `write` keeps one connection for itself (see there), so writes through one Store
    are serialised.  One writing process at a time is assumed for SQLite, any number for PostgreSQL.

    Beyond writing batches and purging, its methods are the functions of the query and change modules
    (queries, alert_queries, supervision, rules, audit, deliveries), each bound by `_reads` or `_writes`
    to a connection of its own: their parameters and docstrings are there.
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
        """Store a batch of received messages in one transaction; returns how many events were new
        (`write_batch` says more)."""
        return self.write_batch(received, cleared_streams, cleared_nodes).new_events

    def write_batch(
        self,
        received: Iterable[Received],
        cleared_streams: Iterable[tuple[str, str]] = (),
        cleared_nodes: Iterable[str] = (),
        media: Iterable[AlertMedia] = (),
        webhook_targets: WebhookTargets | None = None,
    ) -> WriteResult:
        """Store a batch in one transaction: what the ingest writer commits before it acknowledges.

        Events and alert messages already stored (same `id`) are skipped; status and availability keep
        the latest value; an alert keeps its newest state; `cleared_*` forget streams/nodes whose
        retained state was removed from the broker; `media` are alert snapshots and clips; each new
        alert message gets a pending delivery per endpoint `webhook_targets` names.
        """
        batch = _Batch(list(cleared_streams), list(cleared_nodes), list(media))
        for item in received:
            message = item.message
            if isinstance(message, DetectionEvent):
                batch.events.append(item)
            elif isinstance(message, StreamStatus):
                batch.statuses.append(item)
            elif isinstance(message, NodeAvailability):
                batch.availability.append(item)
            elif isinstance(message, Alert):
                batch.alerts.append(item)
            elif isinstance(message, ZoneCounts):
                batch.counts.append(item)
            else:
                raise TypeError(f"cannot store {type(message).__name__}")
        if batch.empty:
            return WriteResult()  # e.g. only malformed messages: no transaction (SQLite would take its write lock)
        evts = batch.events
        with self._write_lock:
            if self._assume_new:
                try:
                    return self._write(batch, webhook_targets, assume_new=True)
                except writes.DuplicateEventError:
                    self._assume_new = False  # a redelivery: write the batch again, skipping what is stored
            result = self._write(batch, webhook_targets, assume_new=False)
            if evts and result.new_events == len({item.message.id for item in evts}):
                self._assume_new = True  # nothing of this batch was stored before: the redeliveries are over
            return result

    def _write(self, batch: _Batch, webhook_targets: WebhookTargets | None, *, assume_new: bool) -> WriteResult:
        """One transaction on the write connection (caller holds _write_lock)."""
        conn = self._write_connection()
        try:
            with conn.begin():
                new = writes.insert_events(conn, batch.events, assume_new=assume_new,
                                           whole_transaction=batch.only_events)  # fmt: skip
                writes.upsert_statuses(conn, batch.statuses)
                writes.upsert_availability(conn, batch.availability)
                if batch.cleared_streams or batch.cleared_nodes:
                    writes.clear_state(conn, batch.cleared_streams, batch.cleared_nodes)
                new_alerts = alert_writes.insert_alerts(conn, batch.alerts, webhook_targets)
                refused = alert_writes.insert_media(conn, batch.media)
                alert_writes.insert_counts(conn, batch.counts)
        except writes.DuplicateEventError:
            raise  # rolled back; the connection is fine
        except BaseException:
            # Maybe broken (server restart, network): the next write checks a connection out of the
            # pool again, whose pre-ping replaces a dead one.
            self._drop_write_connection()
            raise
        return WriteResult(new, new_alerts, refused)

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

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A short write transaction on a pooled connection (the API's and the webhook workers' writes)."""
        with self.engine.connect().execution_options(**write_options()) as conn, conn.begin():
            yield conn

    # ------------------------------------------------------------------ events, health

    query_events = _reads(queries.query_events)
    count_events = _reads(queries.count_events)
    event_messages = _reads(queries.event_messages)
    get_event = _reads(queries.get_event)
    stats = _reads(queries.stats)
    health = _reads(queries.health)
    nodes = _reads(queries.nodes)
    stream_status = _reads(queries.stream_status)
    stream_statuses = _reads(queries.stream_statuses)

    # ------------------------------------------------------------------ alerts

    query_alerts = _reads(alert_queries.query_alerts)
    count_alerts = _reads(alert_queries.count_alerts)
    get_alert = _reads(alert_queries.get_alert)
    alert_history = _reads(alert_queries.alert_history)
    alert_payload = _reads(alert_queries.alert_payload)
    alert_snapshot = _reads(alert_queries.snapshot)
    alert_clip = _reads(alert_queries.clip)
    counts_series = _reads(alert_queries.counts_series)
    acknowledge_alert = _writes(supervision.acknowledge)
    resolve_alert = _writes(supervision.resolve)

    # ------------------------------------------------------------------ rules and audit

    current_rules = _reads(rules.current)
    rules_history = _reads(rules.history)
    latest_rules = _reads(rules.latest_per_stream)
    save_rules = _writes(rules.save)
    mark_rules_published = _writes(rules.mark_published)
    query_audit = _reads(audit.query_audit)
    record_audit = _writes(audit.record)
    record_confirmation = _writes(confirmations.record)
    alert_confirmation = _reads(confirmations.get)

    # ------------------------------------------------------------------ webhook deliveries

    due_deliveries = _reads(deliveries.due)
    next_delivery_due = _reads(deliveries.next_due)
    get_delivery = _reads(deliveries.get)
    query_deliveries = _reads(deliveries.query)
    delivery_summary = _reads(deliveries.summary)
    claim_delivery = _writes(deliveries.claim)
    delivery_succeeded = _writes(deliveries.succeeded)
    delivery_failed = _writes(deliveries.attempt_failed)
    bound_deliveries = _writes(deliveries.fail_beyond)
    fail_unconfigured_deliveries = _writes(deliveries.fail_unconfigured)
    retry_delivery = _writes(deliveries.retry)
