"""Fault: the broker is killed (SIGKILL, no last save) in the middle of a burst of events and restarted;
every event the edge published is stored by the station once, counted by id end to end.  Real Mosquitto
(secured: TLS, logins, ACL; persistence on), the edge's real spooled publisher, the station's real
aggregator on SQLite; the figure (lost, duplicates, recovery time) is printed for the reliability report."""

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
from smarteye.wire.topics import availability_topic, events_topic
from tests.support.factories import make_event
from tests.support.ingest import wait_until
from tests.support.secure_mqtt import report_figure

pytestmark = [pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
              pytest.mark.timeout(180)]  # fmt: skip
PREFIX = "smarteye/v1"
BURST = 3000
KILL_AFTER = 1000


def stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(events.c.id)).scalars())


def test_broker_killed_during_a_burst_loses_no_event(tmp_path: Path) -> None:
    with MosquittoBroker.secured(["site-a"], persistence=True) as broker:
        station_config = GroundStationConfig.model_validate({
            "mqtt": {**broker.client_settings("station"), "client_id": "station-kill", "reconnect_min_s": 0.1,
                     "reconnect_max_s": 0.5},
            "database_url": f"sqlite:///{tmp_path}/station.sqlite", "session_expiry_s": 600,
        })  # fmt: skip
        edge_config = MqttConfig.model_validate({**broker.client_settings("site-a"), "spool_dir": str(tmp_path),
                                                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5})  # fmt: skip
        published: list[str] = []
        with Store(station_config.database_url) as store, Aggregator(station_config, store) as aggregator:
            assert aggregator.wait_ready(10)
            publisher = MqttPublisher(edge_config, f"site-a-{uuid.uuid4().hex[:6]}",
                                      availability_topic(PREFIX, "site-a"), "site-a")  # fmt: skip
            publisher.start()
            assert wait_until(lambda: publisher.connected, 10)
            half_way = threading.Event()

            def burst() -> None:
                topic = events_topic(PREFIX, "site-a", "cam")
                for i in range(BURST):
                    event = make_event(f"burst-{i}", node="site-a", stream="cam")
                    publisher.publish_event(topic, event.model_dump_json().encode())
                    published.append(event.id)
                    if i == KILL_AFTER:
                        half_way.set()

            producer = threading.Thread(target=burst)
            producer.start()
            assert half_way.wait(30)
            broker.kill()  # mid-burst: the edge keeps publishing into its spool
            killed_at = time.monotonic()
            time.sleep(1.0)
            broker.start()
            restarted = time.monotonic()
            producer.join(60)
            all_stored = wait_until(lambda: len(stored_ids(store)) >= BURST, 90)
            recovery = time.monotonic() - restarted
            ids = stored_ids(store)
            publisher.stop()
    lost = len(set(published) - set(ids))
    report_figure("broker_kill_burst", published=len(published), stored=len(ids), lost=lost,
                  duplicates=len(ids) - len(set(ids)), outage_s=round(restarted - killed_at, 2),
                  all_stored_after_restart_s=round(recovery, 2))  # fmt: skip
    assert len(published) == BURST
    assert all_stored, f"{lost} of {BURST} events never reached the store"
    assert lost == 0 and len(ids) == len(set(ids)) == BURST
