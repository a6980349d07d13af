"""Versioned schema migrations, applied when the store opens.

A new database gets the current schema at once (`metadata.create_all`) and is stamped with
SCHEMA_VERSION; an older one runs the upgrade steps after its stamped version, in order.  Adding a
table or column therefore means: change schema.py, bump SCHEMA_VERSION, add the step to MIGRATIONS.
Everything runs in one transaction under a lock, so several aggregators may start at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground_station.store.engine import write_options
from ground_station.store.schema import SCHEMA_VERSION, V2_TABLES, V3_TABLES, metadata, schema_version

log = logging.getLogger("ground_station.store")


def _add_alerts(conn: Connection) -> None:
    """v2: rules and alerts (new tables only; v1's are unchanged)."""
    metadata.create_all(conn, tables=list(V2_TABLES))


def _add_confirmations(conn: Connection) -> None:
    """v3: alert confirmations by drones (a new table only)."""
    metadata.create_all(conn, tables=list(V3_TABLES))


# version -> step that upgrades a database from version-1 to version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _add_alerts, 3: _add_confirmations}

_PG_LOCK_KEY = 0x5EE_0001  # arbitrary, constant: serialises concurrent migrations on one database


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer SmartEye; refusing to write into a schema we do not know."""


def current_version(conn: Connection) -> int | None:
    """The stamped schema version, or None for a database without our tables."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return None
    return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one_or_none()


def migrate(engine: Engine) -> int:
    """Create or upgrade the schema; returns the version the database is at afterwards."""
    with engine.connect().execution_options(**write_options()) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        version = current_version(conn)
        if version is None:
            if sa.inspect(conn).has_table("events"):
                raise RuntimeError("database has an `events` table but no schema_version: not a SmartEye store?")
            metadata.create_all(conn)
            conn.execute(sa.insert(schema_version), {"version": SCHEMA_VERSION, "applied_time": time.time()})
            return SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"database schema is v{version} but this SmartEye knows only up to v{SCHEMA_VERSION}: upgrade it"
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):  # each step said as it runs: a long one is not a hang
            summary = (MIGRATIONS[step].__doc__ or "").split(":", 1)[-1].strip()
            log.info("store: migrating schema v%d → v%d (%d of %d): %s", step - 1, step, step - version,
                     SCHEMA_VERSION - version, summary)  # fmt: skip
            started = time.monotonic()
            MIGRATIONS[step](conn)
            log.info("store: schema v%d ready in %.1f s", step, time.monotonic() - started)
            conn.execute(sa.insert(schema_version), {"version": step, "applied_time": time.time()})
        return SCHEMA_VERSION
