"""Retention passes on the writer's schedule: the first at once, then every retention_interval_s; a
failed pass is reported (counted as a database error by the writer) and tried again next interval."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ground_station.config import GroundStationConfig
from ground_station.ingest.retention import RetentionSchedule
from ground_station.store import Received, Store
from tests.support.factories import make_event


def test_retention_runs_at_once_then_every_interval_and_reports_failures(tmp_path: Path) -> None:
    config = GroundStationConfig.model_validate(
        {
            "database_url": f"sqlite:///{tmp_path}/ground.sqlite",
            "retention_days": None,
            "retention_max_events": 3,
            "retention_interval_s": 0.2,
        }
    )

    class BrokenStore(Store):
        broken = False

        def purge(self, **limits: Any) -> Any:
            if self.broken:
                raise sa.exc.OperationalError("DELETE FROM events …", {}, ConnectionRefusedError("database is down"))
            return super().purge(**limits)

    with BrokenStore(config.database_url) as store:
        events = [make_event(f"old{i}") for i in range(5)]
        store.write([Received(m, time.time() + i, m.model_dump_json()) for i, m in enumerate(events)])
        schedule = RetentionSchedule(config, store, None)
        assert schedule.run_if_due() is None
        assert store.count_events() == 3  # the oldest received beyond the maximum are gone
        more = make_event("new")
        store.write([Received(more, time.time() + 10, more.model_dump_json())])
        assert schedule.run_if_due() is None and store.count_events() == 4  # not due yet
        time.sleep(0.25)
        store.broken = True
        error = schedule.run_if_due()
        assert error is not None and error.startswith("retention: OperationalError") and "database is down" in error
        assert schedule.run_if_due() is None  # not retried before the next interval
        store.broken = False
        time.sleep(0.25)
        assert schedule.run_if_due() is None and store.count_events() == 3
