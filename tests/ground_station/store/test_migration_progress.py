"""A store migration says each step as it runs (a long one on a big database is not taken for a hang)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from ground_station.store.schema import SCHEMA_VERSION, V2_TABLES, V3_TABLES, schema_version
from ground_station.store.store import Store


def test_each_migration_step_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = Store(url)  # made to look like v1: without the v2 and v3 tables, stamped 1
    with store, store.engine.begin() as conn:
        for table in reversed([*V2_TABLES, *V3_TABLES]):
            table.drop(conn)
        conn.execute(sa.update(schema_version).values(version=1))
    with caplog.at_level(logging.INFO, logger="ground_station.store"), Store(url) as store:
        assert store.schema_version == SCHEMA_VERSION
    steps = [r.getMessage() for r in caplog.records if "migrating schema" in r.getMessage()]
    assert steps[0].startswith(f"store: migrating schema v1 → v2 (1 of {SCHEMA_VERSION - 1}): rules and alerts")
    assert len(steps) == SCHEMA_VERSION - 1
    assert any(r.getMessage().startswith(f"store: schema v{SCHEMA_VERSION} ready in") for r in caplog.records)
