"""Snapshots on SQLite next to other writers (the ingest writer, webhook workers): a put waits for the write lock
instead of failing with "database is locked" (which made the ingest writer retry a batch it had committed)."""

from __future__ import annotations

import threading

from ground_station.snapshots import Snapshots
from ground_station.store.engine import write_options
from ground_station.store.store import Store

JPEG = b"\xff\xd8\xff" + b"0" * 1000


def test_puts_wait_for_a_concurrent_writer_instead_of_failing(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'gs.sqlite'}")
    snapshots = Snapshots(store.engine)
    stop = threading.Event()

    def other_writer() -> None:
        with store.engine.connect().execution_options(**write_options()) as conn, conn.begin():
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS busy (x INTEGER)")
        while not stop.is_set():
            with store.engine.connect().execution_options(**write_options()) as conn, conn.begin():
                conn.exec_driver_sql("INSERT INTO busy VALUES (1)")

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        stored = [snapshots.put(f"e{n}", "node1", "cam1", JPEG) for n in range(400)]  # raised before the fix
    finally:
        stop.set()
        writer.join()
        store.close()
    assert all(stored) and snapshots.which_exist(f"e{n}" for n in range(400)) == {f"e{n}" for n in range(400)}
