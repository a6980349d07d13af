"""Fault: the station's PostgreSQL is down for 20 s while a node keeps sending events; once it is back
every event is stored once, counted by id end to end.  A private PostgreSQL server (stopped and started
for real), the secured Mosquitto, the edge's real spooled publisher and the station's real aggregator;
the figure is printed for the reliability report."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from edge.outputs.mqtt_publisher import MqttPublisher
from ground_station.config import GroundStationConfig
from ground_station.ingest import Aggregator
from ground_station.store import Store
from ground_station.store.schema import events
from smarteye.config.mqtt import MqttConfig
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.sim.postgres import PrivatePostgres, find_pg_bin
from smarteye.wire.topics import availability_topic, events_topic
from tests.support.factories import make_event
from tests.support.ingest import wait_until
from tests.support.secure_mqtt import report_figure

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server binaries are not installed"),
    pytest.mark.timeout(240),
]
PREFIX = "smarteye/v1"
OUTAGE_S = 20.0
RATE = 50  # events per second, before, during and after the outage


def stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(events.c.id)).scalars())


def test_postgres_down_for_20_s_loses_no_event(tmp_path: Path) -> None:
    with PrivatePostgres() as pg, MosquittoBroker.secured(["site-a"], persistence=True) as broker:
        station_config = GroundStationConfig.model_validate({
            "mqtt": {**broker.client_settings("station"), "client_id": "station-pg", "reconnect_min_s": 0.1},
            "database_url": pg.url, "session_expiry_s": 600,
        })  # fmt: skip
        edge_config = MqttConfig.model_validate({**broker.client_settings("site-a"), "spool_dir": str(tmp_path)})
        published: list[str] = []
        stop = threading.Event()
        with Store(station_config.database_url) as store, Aggregator(station_config, store) as aggregator:
            assert aggregator.wait_ready(10)
            publisher = MqttPublisher(edge_config, f"site-a-{uuid.uuid4().hex[:6]}",
                                      availability_topic(PREFIX, "site-a"), "site-a")  # fmt: skip
            publisher.start()

            def produce() -> None:
                topic = events_topic(PREFIX, "site-a", "cam")
                i = 0
                while not stop.is_set():
                    event = make_event(f"pg-{i}", node="site-a", stream="cam")
                    publisher.publish_event(topic, event.model_dump_json().encode())
                    published.append(event.id)
                    i += 1
                    time.sleep(1 / RATE)

            producer = threading.Thread(target=produce)
            producer.start()
            try:
                assert wait_until(lambda: len(stored_ids(store)) >= 2 * RATE, 20), "nothing stored before"
                pg.stop()
                down_at = time.monotonic()
                time.sleep(OUTAGE_S)
                pg.start()
                back_at = time.monotonic()
                time.sleep(2.0)  # events keep coming after it is back
            finally:
                stop.set()
                producer.join(10)
            total = len(published)
            caught_up = wait_until(lambda: len(stored_ids(store)) >= total, 90)
            catch_up_s = time.monotonic() - back_at
            ids = stored_ids(store)
            db_errors = aggregator.stats().db_errors
            publisher.stop()
    lost = len(set(published) - set(ids))
    report_figure("postgres_outage", published=total, stored=len(ids), lost=lost, duplicates=len(ids) - len(set(ids)),
                  outage_s=round(back_at - down_at, 1), all_stored_after_restart_s=round(catch_up_s, 2),
                  db_errors=db_errors)  # fmt: skip
    assert caught_up, f"{lost} of {total} events never reached the store"
    assert lost == 0 and len(ids) == len(set(ids)) == total
    assert db_errors >= 1  # the outage was seen (and retried), not silently skipped
