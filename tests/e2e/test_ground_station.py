"""Acceptance (ground station): a real edge node on vtest.avi → Mosquitto → the ground station on
SQLite and on PostgreSQL; the API returns every published event exactly once, with snapshots."""

from __future__ import annotations

import time

import httpx
import pytest

from edge.config import parse_config
from edge.factory import build_node
from ground_station.auth.roles import Role
from ground_station.config import GroundStationConfig
from ground_station.service import GroundStation
from smarteye.sim.broker import STATION_USER, MosquittoBroker
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import DetectionEvent, EventType
from tests.support.edge_process import ANY_PORT_VIDEO

pytestmark = pytest.mark.slow
PASSWORD = "supervisor-password"


def test_edge_to_ground_station_no_loss_no_doubles_with_snapshots(db_url, media, model_path, tmp_path) -> None:
    published: list[DetectionEvent] = []
    with MosquittoBroker.secured(["site-a"]) as broker:
        station = GroundStation(
            GroundStationConfig.model_validate(
                {"mqtt": {**broker.client_settings(STATION_USER), "client_id": f"gs-{time.time_ns()}"},
                 "database_url": db_url, "web": {"port": free_tcp_port(), "secure_cookies": False}}
            )
        )  # fmt: skip
        station.accounts.create_user("sup", PASSWORD, Role.SUPERVISOR)
        station.start()
        try:
            node = build_node(
                parse_config(
                    {"node": "site-a",
                     "sources": [{"name": "walkway", "url": str(media("vtest.avi")), "realtime": False}],
                     "detector": {"model": str(model_path), "imgsz": 320},
                     "mqtt": {**broker.client_settings("site-a"), "spool_dir": str(tmp_path / "spool")},
                     "video": ANY_PORT_VIDEO}
                ),
                on_event=published.append,
            )  # fmt: skip
            node.start()
            deadline = time.monotonic() + 120
            while sum(e.type is EventType.NEW for e in published) < 12 and time.monotonic() < deadline:
                time.sleep(0.2)
            node.stop()  # ends every open event and flushes the spool
            assert station.aggregator.wait_idle(30)
            client = httpx.Client(base_url=station.url)
            login = client.post("/api/login", json={"username": "sup", "password": PASSWORD})
            assert login.status_code == 200
            stored, cursor = [], None
            while True:
                page = client.get("/api/events", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
                stored += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            news = [e for e in stored if e["type"] == "new"]
            snapshot = client.get(f"/api/events/{news[0]['event_id']}/snapshot")
            nodes = client.get("/api/nodes").json()
        finally:
            station.stop()

    assert len(published) >= 20
    ids = [e["id"] for e in stored]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == {e.id for e in published}, "events were lost or invented"
    assert all(e["has_snapshot"] for e in news), "a `new` event came without its snapshot"
    assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.content[:3] == b"\xff\xd8\xff"
    assert nodes[0]["node"] == "site-a" and nodes[0]["streams"][0]["stream"] == "walkway"
