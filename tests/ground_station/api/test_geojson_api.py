"""/api/geojson on the app the product serves, fed through MQTT ingest like every other message."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from geojson_pydantic import FeatureCollection

from ground_station.auth.roles import Role
from ground_station.service import GroundStation
from smarteye.wire.messages import EventType, GeoPosition
from smarteye.wire.topics import alerts_topic
from tests.support.accounts import FAST_HASHER
from tests.support.alerts import make_alert
from tests.support.factories import make_event
from tests.support.ingest import make_config, wait_until

PASSWORD = "geojson-password-1"


def _at(lat: float, lon: float) -> GeoPosition:
    return GeoPosition(lat=lat, lon=lon, uncertainty_m=3.0, source="mavlink")


def test_current_detections_and_open_alerts_as_geojson(broker, prefix, publisher, tmp_path: Path) -> None:
    config = make_config(broker, f"sqlite:///{tmp_path / 'gs.sqlite'}", prefix, web={"secure_cookies": False})
    station = GroundStation(config, hasher=FAST_HASHER)
    station.accounts.create_user("gis", PASSWORD, Role.VIEWER)
    station.aggregator.start()
    try:
        assert station.aggregator.wait_ready(10)
        now = time.time()
        publisher.event(make_event("walker", seq=0, capture_time=now - 2, geo=_at(36.1, 127.1)))
        publisher.event(make_event("walker", seq=1, capture_time=now - 1, geo=_at(36.2, 127.2)))
        publisher.event(make_event("gone", seq=0, capture_time=now - 3, geo=_at(36.3, 127.3)))
        publisher.event(make_event("gone", seq=1, type=EventType.END, capture_time=now - 2, geo=_at(36.3, 127.3)))
        publisher.event(make_event("old", capture_time=now - 600, geo=_at(36.4, 127.4)))
        publisher.event(make_event("unlocated", capture_time=now - 1))
        alert = make_alert("al1", objects=2, start_time=now - 5)
        located = [o.model_copy(update={"geo": _at(36.5 + i / 10, 127.5)}) for i, o in enumerate(alert.objects)]
        publisher.publish(alerts_topic("", "node1", "cam1").lstrip("/"),
                          alert.model_copy(update={"objects": located}).model_dump_json())  # fmt: skip
        publisher.flush()
        assert wait_until(lambda: station.store.count_events() >= 6 and station.store.count_alerts() == 1, 10)
    finally:
        station.aggregator.stop()
    client = TestClient(station.app)
    assert client.get("/api/geojson/detections").status_code == 401
    client.post("/api/login", json={"username": "gis", "password": PASSWORD})
    response = client.get("/api/geojson/detections")
    assert response.headers["content-type"].startswith("application/geo+json")
    detections = FeatureCollection.model_validate(response.json())
    assert [(f.id, f.geometry.coordinates) for f in detections.features] == [("node1/cam1/walker", (127.2, 36.2))], (
        "the latest position of objects seen in the last minute and not ended, in lon/lat order"
    )
    assert detections.features[0].properties["uncertainty_m"] == 3.0
    alerts = FeatureCollection.model_validate(client.get("/api/geojson/alerts").json())
    assert len(alerts.features) == 1 and alerts.features[0].geometry.type == "MultiPoint"
    assert [tuple(c) for c in alerts.features[0].geometry.coordinates] == [(127.5, 36.5), (127.5, 36.6)]
    assert alerts.features[0].properties["rule"] == "door-enter"
    station.store.close()


def test_the_live_socket_sends_located_detections_as_geojson_features(tmp_path: Path) -> None:
    from ground_station.api.app import create_app
    from ground_station.api.live import LiveHub, TelemetryCache
    from ground_station.auth.accounts import Accounts
    from ground_station.snapshots import Snapshots
    from ground_station.store.store import Store

    store = Store(f"sqlite:///{tmp_path / 'gs.sqlite'}")
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    accounts.create_user("gis", PASSWORD, Role.VIEWER)
    hub = LiveHub()
    client = TestClient(create_app(store, accounts, Snapshots(store.engine), hub, TelemetryCache()))
    client.post("/api/login", json={"username": "gis", "password": PASSWORD})
    with client.websocket_connect("/api/live?format=geojson") as ws:
        deadline = time.monotonic() + 5
        while hub.clients == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        hub.publish(make_event("blind").model_dump_json())  # not located: nothing for a GIS
        hub.publish('{"kind":"status","stream":"cam1"}')
        hub.publish(make_event("seen", geo=_at(36.2, 127.2)).model_dump_json())
        feature = ws.receive_json()
    assert feature["type"] == "Feature" and feature["id"] == "node1/cam1/seen"
    assert feature["geometry"] == {"type": "Point", "coordinates": [127.2, 36.2]}
    store.close()
