"""When the retention limits are applied: every `retention_interval_s`, on the writer's thread.

Between two batches, so a purge never runs beside a write (SQLite would make one wait for the
other's lock anyway); store.retention deletes in short chunks, so the next batch never waits long.
Snapshots, and alert data (store.retention), go with their events' age limit.
"""

from __future__ import annotations

import logging
import time

from ground_station.config import GroundStationConfig
from ground_station.snapshots import Snapshots
from ground_station.store import Store

log = logging.getLogger(__name__)


class RetentionSchedule:
    def __init__(self, config: GroundStationConfig, store: Store, snapshots: Snapshots | None) -> None:
        self.config = config
        self.store = store
        self.snapshots = snapshots
        self._next = time.monotonic()  # the first pass runs at once

    def run_if_due(self) -> str | None:
        """Purge if it is time; the error, if the pass failed (it is tried again next interval)."""
        if time.monotonic() < self._next:
            return None
        try:
            return self._purge()
        finally:
            self._next = time.monotonic() + self.config.retention_interval_s

    def _purge(self) -> str | None:
        cfg = self.config
        if cfg.retention_days is None and cfg.retention_max_events is None:
            return None
        max_age = cfg.retention_days * 86400 if cfg.retention_days is not None else None
        try:
            result = self.store.purge(max_age_s=max_age, max_events=cfg.retention_max_events)
            if self.snapshots is not None and max_age is not None:
                self.snapshots.purge(older_than=time.time() - max_age)
        except Exception as error:
            text = f"retention: {type(error).__name__}: {error}".splitlines()[0]
            log.warning("aggregator retention pass failed: %s", text)
            return text
        if result.total or result.alert_rows:
            log.info(
                "retention deleted %d event messages (%d by age, %d by count) and %d rows of alert data",
                result.total,
                result.by_age,
                result.by_count,
                result.alert_rows,
            )
        return None
