"""The writer: batches in one transaction each, acks only after the commit and per connection; a
database outage is retried without loss, data the database refuses is counted, a slow database holds
the broker back (no drops).  Real stores, and for the end-to-end cases a real private Mosquitto."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ground_station.config import GroundStationConfig
from ground_station.ingest import Aggregator
from ground_station.ingest.handoff import Handoff, Item
from ground_station.ingest.malformed import MalformedCounter
from ground_station.ingest.writer import Writer
from ground_station.store import Received, Store, WriteResult
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.factories import make_event
from tests.support.ingest import Publisher, make_config, wait_until

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
pytestmark = pytest.mark.timeout(60)


def test_a_batch_is_acknowledged_after_its_commit_and_per_connection(tmp_path: Path) -> None:
    config = GroundStationConfig.model_validate(
        {"database_url": f"sqlite:///{tmp_path}/ground.sqlite", "batch_linger_s": 0, "retention_days": None}
    )
    messages = [make_event(f"ack{i}") for i in range(5)]
    handoff = Handoff(100)
    handoff.put(
        [
            Item(Received(m, time.time(), m.model_dump_json()), None, 10 + i, 1, 1 if i < 2 else 2)
            for i, m in enumerate(messages)
        ],
        timeout=0,
    )
    handoff.close()
    acks: list[tuple[int, list[int], int]] = []
    errors: list[str] = []
    with Store(config.database_url) as store:

        def acknowledge(connection: int, items: Sequence[Item]) -> bool:
            acks.append((connection, [item.mid for item in items], store.count_events()))
            return True

        writer = Writer(config, store, None, handoff, acknowledge, MalformedCounter(), None, errors.append)
        writer.start()
        writer.join(10)
        assert not writer.is_alive()
        # Both runs acknowledged only once all five were committed; each to its own connection, in order.
        assert acks == [(1, [10, 11], 5), (2, [12, 13, 14], 5)]
        assert (writer.processed, writer.events, writer.stored, writer.batches, errors) == (5, 5, 5, 1, [])


class FlakyStore(Store):
    """A real store whose database can be made to fail like an unreachable server."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = threading.Event()

    def write_batch(self, *args: Any, **kwargs: Any) -> WriteResult:
        if self.down.is_set():
            raise sa.exc.OperationalError("INSERT INTO events …", {}, ConnectionRefusedError("database is down"))
        return super().write_batch(*args, **kwargs)


@needs_mosquitto
def test_database_outage_is_retried_without_loss(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher
) -> None:
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with FlakyStore(config.database_url) as store, Aggregator(config, store=store) as aggregator:
        assert aggregator.wait_ready(10)
        store.down.set()
        for i in range(20):
            publisher.event(make_event(f"outage{i}"))
        publisher.flush()
        assert wait_until(lambda: aggregator.stats().db_errors > 0)
        assert "database is down" in (aggregator.stats().last_error or "")
        store.down.clear()
        assert wait_until(lambda: store.count_events() == 20), aggregator.stats()
        assert aggregator.wait_idle(10)


@needs_mosquitto
def test_unstored_messages_are_redelivered_after_a_crash(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher
) -> None:
    """Acknowledged only after commit: what was received but never stored comes back from the broker."""
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with FlakyStore(config.database_url) as store:
        store.down.set()
        doomed = Aggregator(config, store=store)
        doomed.start()
        assert doomed.wait_ready(10)
        for i in range(25):
            publisher.event(make_event(f"crash{i}"))
        publisher.flush()
        assert wait_until(lambda: doomed.stats().received == 25)
        doomed.stop(timeout=0.3)  # gives up on the stuck writer, like a crash: nothing was acknowledged
        assert store.count_events() == 0
    with Aggregator(config) as restarted:
        assert wait_until(lambda: restarted.store.count_events() == 25), restarted.stats()


@needs_mosquitto
def test_rows_the_database_refuses_are_counted_not_retried_forever(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    class PickyStore(Store):
        def write_batch(self, received: Any, *args: Any, **kwargs: Any) -> WriteResult:
            received = list(received)
            if any(item.message.label == "poison" for item in received):
                raise sa.exc.DataError("INSERT INTO events …", {}, ValueError("value the database cannot store"))
            return super().write_batch(received, *args, **kwargs)

    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    with PickyStore(config.database_url) as store:
        aggregator = running(Aggregator(config, store=store))
        for i in range(12):
            publisher.event(make_event(f"batch{i}", label="poison" if i == 7 else "person"))
        publisher.flush()
        assert wait_until(lambda: aggregator.stats().malformed.get("rejected") == 1), aggregator.stats()
        assert aggregator.wait_idle(10)
        assert store.count_events() == 11


@needs_mosquitto
def test_backpressure_never_drops(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    """A tiny queue and a slow database: the broker holds the backlog, nothing is lost."""

    class SlowStore(Store):
        def write_batch(self, *args: Any, **kwargs: Any) -> WriteResult:
            time.sleep(0.02)
            return super().write_batch(*args, **kwargs)

    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix, queue_max=5, batch_size=5)
    with SlowStore(config.database_url) as store:
        aggregator = running(Aggregator(config, store=store))
        for i in range(150):
            publisher.event(make_event(f"bp{i}"))
        publisher.flush()
        assert wait_until(lambda: store.count_events() == 150, 30), aggregator.stats()
        stats = aggregator.stats()
        assert stats.batches >= 30 and stats.duplicates == 0


@needs_mosquitto
def test_a_large_backlog_is_written_in_full_batches(
    broker: MosquittoBroker, db_url: str, prefix: str, publisher: Publisher, running: Callable[..., Aggregator]
) -> None:
    """Bursts handed over at once are still cut into batch_size transactions; nothing lost or doubled."""
    config = make_config(broker, db_url, prefix, batch_size=40, queue_max=100)
    aggregator = running(Aggregator(config))
    messages = [make_event(f"burst{i // 5}", i % 5, stream=f"cam{i % 3}") for i in range(600)]
    for message in messages:
        publisher.event(message)
    publisher.flush()
    assert wait_until(lambda: aggregator.store.count_events() == 600, 30), aggregator.stats()
    assert aggregator.wait_idle(10)
    stats = aggregator.stats()
    assert (stats.received, stats.stored, stats.duplicates, stats.queue_depth) == (600, 600, 0, 0)
    assert stats.batches >= 600 // 40
