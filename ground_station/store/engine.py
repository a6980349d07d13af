"""Creating the SQLAlchemy engine, with the per-backend settings that matter for a write-heavy store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

SQLITE_BUSY_TIMEOUT_MS = 10_000


def write_options() -> dict[str, Any]:
    """Execution options for a connection that is going to write (ignored by PostgreSQL)."""
    return {"sqlite_begin": "IMMEDIATE"}


def create_store_engine(url: str, echo: bool = False) -> Engine:
    """An engine for `url` (sqlite:///… or postgresql+psycopg://…).

    SQLite gets WAL (readers never block the writer), synchronous=NORMAL (durable across process
    crashes, and an OS crash loses at most the last transactions, never corrupts), a busy timeout,
    and real transactions: pysqlite's own implicit BEGIN handling is switched off and SQLAlchemy's
    `begin` emits BEGIN, so a batch is one transaction and DDL is transactional too.
    """
    parsed = make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if (backend, driver) == ("postgresql", "psycopg"):
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    if (backend, driver) != ("sqlite", "pysqlite"):
        # The ingest hot path (writes.insert_events) is tuned for exactly these two drivers.
        raise ValueError(f"unsupported database {backend}+{driver}: use sqlite:/// or postgresql+psycopg://")
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
    engine = sa.create_engine(parsed, echo=echo)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see docstring)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers pass execution_options(sqlite_begin="IMMEDIATE") to take the write lock up front.
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine
