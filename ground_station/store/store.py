"""`Store`: the one object the aggregator and the web API use to reach the database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ground_station.store import (
    alert_queries,
    alert_writes,
    audit,
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
from ground_station.store.queries import Names
from ground_station.store.records import (
    AlertMedia,
    AlertMessageInfo,
    AlertPage,
    AuditPage,
    CountsPoint,
    Delivery,
    DeliveryPage,
    EventPage,
    NodeState,
    PurgeResult,
    Received,
    RulesVersion,
    Stats,
    StoredAlert,
    StoredEvent,
    StreamHealth,
    WriteResult,
)
from smarteye.wire.messages import Alert, DetectionEvent, NodeAvailability, StreamStatus, ZoneCounts
from smarteye.wire.rules import RuleSet


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

    # ------------------------------------------------------------------ alerts

    def query_alerts(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        node: Names = None,
        stream: Names = None,
        rule: Names = None,
        severity: Names = None,
        state: Names = None,
        acknowledged: bool | None = None,
        resolved: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> AlertPage:
        """Newest-first page of alerts (see alert_queries.query_alerts)."""
        with self.engine.connect() as conn:
            return alert_queries.query_alerts(
                conn, since=since, until=until, node=node, stream=stream, rule=rule, severity=severity, state=state,
                acknowledged=acknowledged, resolved=resolved, limit=limit, cursor=cursor,
            )  # fmt: skip

    def count_alerts(self, **filters: Any) -> int:
        with self.engine.connect() as conn:
            return alert_queries.count_alerts(conn, **filters)

    def get_alert(self, alert_id: str) -> StoredAlert | None:
        with self.engine.connect() as conn:
            return alert_queries.get_alert(conn, alert_id)

    def alert_history(self, alert_id: str) -> list[AlertMessageInfo]:
        """The alert's messages, in order."""
        with self.engine.connect() as conn:
            return alert_queries.alert_history(conn, alert_id)

    def alert_snapshot(self, alert_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            return alert_queries.get_media(conn, alert_id, alert_queries.SNAPSHOT)

    def alert_clip(self, alert_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            return alert_queries.get_media(conn, alert_id, alert_queries.CLIP)

    def counts_series(
        self, node: str, stream: str, *, since: float | None = None, until: float | None = None, limit: int = 2000
    ) -> tuple[list[CountsPoint], bool]:
        """A stream's zone counts, oldest first, and whether older points were left out."""
        with self.engine.connect() as conn:
            return alert_queries.counts_series(conn, node, stream, since=since, until=until, limit=limit)

    def acknowledge_alert(self, alert_id: str, actor: str, note: str | None = None) -> None:
        """Raises supervision.NoSuchAlertError / AlreadyDoneError."""
        with self._writing() as conn:
            supervision.acknowledge(conn, alert_id, actor, note)

    def resolve_alert(self, alert_id: str, actor: str, note: str | None = None) -> None:
        """Raises supervision.NoSuchAlertError / AlreadyDoneError."""
        with self._writing() as conn:
            supervision.resolve(conn, alert_id, actor, note)

    # ------------------------------------------------------------------ rules and audit

    def current_rules(self, node: str, stream: str) -> RulesVersion | None:
        with self.engine.connect() as conn:
            return rules.current(conn, node, stream)

    def rules_history(self, node: str, stream: str, limit: int = 100) -> list[RulesVersion]:
        with self.engine.connect() as conn:
            return rules.history(conn, node, stream, limit)

    def latest_rules(self, *, unpublished_only: bool = False) -> list[RulesVersion]:
        """The newest rules version of every stream (optionally only those not yet on the broker)."""
        with self.engine.connect() as conn:
            return rules.latest_per_stream(conn, unpublished_only=unpublished_only)

    def save_rules(
        self,
        node: str,
        stream: str,
        ruleset: RuleSet | None,
        author: str,
        describe: rules.Describe,
        base_version: int | None = None,
    ) -> RulesVersion:
        """Store version n+1 (None: cleared) with its audit entry (raises rules.VersionConflictError)."""
        with self._writing() as conn:
            return rules.save(conn, node, stream, ruleset, author, describe, base_version)

    def mark_rules_published(self, node: str, stream: str, version: int) -> None:
        with self._writing() as conn:
            rules.mark_published(conn, node, stream, version)

    def query_audit(self, **filters: Any) -> AuditPage:
        """Newest-first page of the audit log (see audit.query_audit)."""
        with self.engine.connect() as conn:
            return audit.query_audit(conn, **filters)

    def stream_statuses(self) -> list[StreamStatus]:
        """Every stream's latest status message as its node sent it, by node and stream."""
        with self.engine.connect() as conn:
            return [StreamStatus.model_validate_json(p) for p in queries.status_payloads(conn)]

    def stream_status(self, node: str, stream: str) -> StreamStatus | None:
        """The stream's latest status message as the node sent it."""
        with self.engine.connect() as conn:
            payload = queries.status_payload(conn, node, stream)
        return StreamStatus.model_validate_json(payload) if payload is not None else None

    # ------------------------------------------------------------------ webhook deliveries

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A short write transaction on a pooled connection (the API's and the webhook workers' writes)."""
        with self.engine.connect().execution_options(**write_options()) as conn, conn.begin():
            yield conn

    def due_deliveries(self, url: str, now: float, limit: int = 50) -> list[Delivery]:
        with self.engine.connect() as conn:
            return deliveries.due(conn, url, now, limit)

    def next_delivery_due(self, url: str) -> float | None:
        with self.engine.connect() as conn:
            return deliveries.next_due(conn, url)

    def claim_delivery(self, delivery: Delivery, lease_until: float) -> bool:
        with self._writing() as conn:
            return deliveries.claim(conn, delivery, lease_until)

    def delivery_succeeded(self, delivery_id: int, status: int, at: float) -> None:
        with self._writing() as conn:
            deliveries.succeeded(conn, delivery_id, status, at)

    def delivery_failed(
        self, delivery_id: int, error: str, status: int | None, retry_at: float | None, at: float
    ) -> None:
        with self._writing() as conn:
            deliveries.attempt_failed(conn, delivery_id, error, status, retry_at, at)

    def bound_deliveries(self, url: str, max_pending: int, at: float) -> int:
        """Fail the oldest pending deliveries to `url` beyond `max_pending`; returns how many."""
        with self._writing() as conn:
            return deliveries.fail_beyond(conn, url, max_pending, at)

    def fail_unconfigured_deliveries(self, urls: list[str], at: float) -> int:
        """Fail pending deliveries to endpoints not in `urls`; returns how many."""
        with self._writing() as conn:
            return deliveries.fail_unconfigured(conn, urls, at)

    def retry_delivery(self, delivery_id: int, actor: str | None = None) -> bool:
        """A failed delivery goes back to pending, due now (recorded in the audit log when `actor` is given);
        False if it is not a failed delivery."""
        with self._writing() as conn:
            done = deliveries.retry(conn, delivery_id)
            if done and actor is not None:
                audit.record(conn, actor, audit.WEBHOOK_RETRY, str(delivery_id), {})
            return done

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self.engine.connect() as conn:
            return deliveries.get(conn, delivery_id)

    def query_deliveries(self, **filters: Any) -> DeliveryPage:
        with self.engine.connect() as conn:
            return deliveries.query(conn, **filters)

    def delivery_summary(self) -> dict[str, dict[str, int]]:
        with self.engine.connect() as conn:
            return deliveries.summary(conn)
