"""Fault: the broker is killed (SIGKILL, no last save) in the middle of a burst of events and restarted;
every event the edge published is stored by the station once, counted by id end to end.  Real Mosquitto
(secured: TLS, logins, ACL; persistence on), the edge's real spooled publisher, the station's real
aggregator on SQLite; the figure (lost, duplicates, recovery time) is printed for the reliability report.

The station is held behind on purpose (its writer waits until the broker is back), as a busy station is:
what the broker has accepted but not yet delivered then lives only in its memory, and SIGKILL loses it.
Only the end-to-end confirmations (the edge keeps every message until the station says it stored it, and
sends again what is unconfirmed after a reconnect) get those events through; with `confirmations: false`
this test fails.  Passing does not depend on the station keeping up."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

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
        # The killed broker forgets the station's session: whatever the edge re-sends before the station has
        # subscribed again reaches no one, and only the confirmation timeout sends it once more (300 s by
        # default; short here so that the test does not wait that long). `on`: the station, held back from the
        # start, confirms nothing before the kill, so `auto` would not have started keeping rows yet.
        edge_config = MqttConfig.model_validate({**broker.client_settings("site-a"), "spool_dir": str(tmp_path),
                                                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
                                                 "confirmations": "on", "confirm_timeout_s": 3})  # fmt: skip
        published: list[str] = []
        broker_back = threading.Event()
        with Store(station_config.database_url) as store:
            write_batch = store.write_batch

            def behind(*args: Any, **kwargs: Any) -> Any:
                """The station is behind: its writer stores nothing until the broker is back."""
                broker_back.wait(60)
                return write_batch(*args, **kwargs)

            store.write_batch = behind  # type: ignore[method-assign]
            with Aggregator(station_config, store) as aggregator:
                assert aggregator.wait_ready(10)
                publisher = MqttPublisher(edge_config, f"site-a-{uuid.uuid4().hex[:6]}",
                                          availability_topic(PREFIX, "site-a"), "site-a")  # fmt: skip
                publisher.start()
                try:
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
                    # The broker has accepted what was sent so far (the edge holds it as unconfirmed).
                    assert wait_until(lambda: publisher.stats()["unconfirmed"] > 0, 10)
                    broker.kill()  # mid-burst: the edge keeps publishing into its spool
                    killed_at = time.monotonic()
                    time.sleep(1.0)
                    broker.start()
                    restarted = time.monotonic()
                    broker_back.set()
                    producer.join(60)
                    all_stored = wait_until(lambda: len(stored_ids(store)) >= BURST, 90)
                    recovery = time.monotonic() - restarted
                    ids = stored_ids(store)
                    # Every event confirmed end to end: the edge's spool empties.
                    confirmed = wait_until(lambda: publisher.stats()["pending"] == 0, 30)
                    stats = publisher.stats()
                finally:
                    broker_back.set()
                    publisher.stop()
    lost = len(set(published) - set(ids))
    report_figure("broker_kill_burst", published=len(published), stored=len(ids), lost=lost,
                  duplicates=len(ids) - len(set(ids)), outage_s=round(restarted - killed_at, 2),
                  all_stored_after_restart_s=round(recovery, 2), resent_by_edge=stats["resent"])  # fmt: skip
    assert len(published) == BURST
    assert all_stored, f"{lost} of {BURST} events never reached the store"
    assert lost == 0 and len(ids) == len(set(ids)) == BURST
    assert confirmed, f"{stats['pending']} events left unconfirmed in the edge's spool"
    assert stats["resent"] > 0  # what the broker had accepted was sent again after its restart
