"""Ground station API: authentication on every route, roles, CSRF, tokens, and the data routes."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ground_station.api.app import create_app
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.auth.accounts import Accounts
from ground_station.auth.roles import Role
from ground_station.snapshots import Snapshots
from ground_station.store.records import Received
from ground_station.store.store import Store
from smarteye.wire.messages import Box, DetectionEvent, EventType
from tests.support.accounts import FAST_HASHER

PASSWORD = "correct horse battery"
PUBLIC = {"/api/health", "/metrics", "/api/login", "/login", "/"}


@pytest.fixture
def station(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'gs.sqlite'}")
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    for name, role in (("ada", Role.ADMIN), ("pia", Role.PILOT), ("sam", Role.SUPERVISOR), ("val", Role.VIEWER)):
        accounts.create_user(name, PASSWORD, role)
    snapshots = Snapshots(store.engine)
    app = create_app(store, accounts, snapshots, LiveHub(), TelemetryCache(), secure_cookies=False)
    yield app, store, accounts, snapshots
    store.close()


def _client(app, user: str | None = None) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app)
    if user is None:
        return client, {}
    response = client.post("/api/login", json={"username": user, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": response.json()["csrf_token"]}


def _protected_routes(app) -> list[tuple[str, str]]:
    routes = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path not in PUBLIC:
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            # (OPTIONS: the WHEP routes' CORS preflight, answered before authentication and carrying no data.)
            routes += [(method, path) for method in route.methods if method not in ("HEAD", "OPTIONS")]
    return routes


def test_every_protected_route_refuses_anonymous_requests(station) -> None:
    app = station[0]
    client, _ = _client(app)
    routes = _protected_routes(app)
    assert len(routes) >= 15
    for method, path in routes:
        response = client.request(method, path, json={}, follow_redirects=False)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
        else:  # pages send a browser to the login page
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), (method, path)
    assert client.get("/api/health").status_code == 200
    assert "smarteye_live_clients" in client.get("/metrics").text


def test_roles_are_enforced_on_every_admin_and_telemetry_route(station) -> None:
    app = station[0]
    admin_routes = [(m, p) for m, p in _protected_routes(app) if p.startswith(("/api/users", "/api/tokens"))]
    assert len(admin_routes) >= 7
    for user in ("pia", "sam", "val"):
        client, csrf = _client(app, user)
        for method, path in admin_routes:
            assert client.request(method, path, json={}, headers=csrf).status_code == 403, (user, method, path)
    viewer, _ = _client(app, "val")
    assert viewer.get("/api/telemetry").status_code == 403
    assert viewer.get("/api/events").status_code == 200
    pilot, _ = _client(app, "pia")
    assert pilot.get("/api/telemetry").status_code == 200


def test_csrf_token_is_required_for_cookie_writes(station) -> None:
    app = station[0]
    client, csrf = _client(app, "ada")
    body = {"username": "newbie", "password": PASSWORD, "role": "viewer"}
    assert client.post("/api/users", json=body).status_code == 403
    assert client.post("/api/users", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/users", json=body, headers=csrf).status_code == 201
    assert client.post("/api/users", json=body, headers=csrf).status_code == 409  # exists already


def test_login_logout_disable_and_password_storage(station) -> None:
    app, store, accounts, _ = station
    client = TestClient(app)
    assert client.post("/api/login", json={"username": "ada", "password": "wrong password!"}).status_code == 401
    assert client.post("/api/login", json={"username": "nobody", "password": PASSWORD}).status_code == 401
    client, csrf = _client(app, "val")
    cookie = client.cookies.get("smarteye_session")
    assert cookie and client.get("/api/session").json()["role"] == "viewer"
    assert client.post("/api/logout", headers=csrf).status_code == 200
    stale = TestClient(app, cookies={"smarteye_session": cookie})
    assert stale.get("/api/session").status_code == 401  # the server forgot the session
    accounts.update_user("val", disabled=True)
    assert TestClient(app).post("/api/login", json={"username": "val", "password": PASSWORD}).status_code == 401
    with store.engine.connect() as conn:
        hashes = [row[0] for row in conn.exec_driver_sql("select password_hash from users")]
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)
    with pytest.raises(ValueError, match="at least 10"):
        accounts.create_user("shorty", "short", Role.VIEWER)


def test_passwords_are_stored_as_argon2id_with_the_library_defaults(tmp_path) -> None:
    """The product's hasher (the other tests pass a cheap one): argon2id, 64 MiB, 3 passes, 4 lanes."""
    with Store(f"sqlite:///{tmp_path / 'gs.sqlite'}") as store:
        accounts = Accounts(store.engine)
        accounts.create_user("ada", PASSWORD, Role.ADMIN)
        with store.engine.connect() as conn:
            stored = conn.exec_driver_sql("select password_hash from users").scalar_one()
        assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in stored
        assert accounts.login("ada", PASSWORD) is not None


def test_api_tokens_for_other_systems(station) -> None:
    app = station[0]
    admin, csrf = _client(app, "ada")
    created = admin.post("/api/tokens", json={"name": "city-dashboard", "role": "viewer"}, headers=csrf).json()
    system = TestClient(app, headers={"Authorization": f"Bearer {created['token']}"})
    assert system.get("/api/events").status_code == 200
    assert system.get("/api/users").status_code == 403
    listed = admin.get("/api/tokens").json()
    assert [t["name"] for t in listed] == ["city-dashboard"] and "token" not in listed[0]
    assert admin.delete(f"/api/tokens/{created['id']}", headers=csrf).status_code == 200
    assert system.get("/api/events").status_code == 401
    assert TestClient(app, headers={"Authorization": "Bearer se_guess"}).get("/api/events").status_code == 401


def _event(i: int, kind: EventType = EventType.NEW, **extra) -> DetectionEvent:
    now = time.time()
    return DetectionEvent(
        node="edge-1", id=f"ev{i}:0", event_id=f"ev{i}", seq=0, type=kind, stream="cam", track_id=i, label="person",
        class_id=0, score=0.8, top_score=0.9, box=Box(x1=10, y1=20, x2=50, y2=120),
        box_norm=Box(x1=0.01, y1=0.03, x2=0.07, y2=0.2), frame_width=768, frame_height=576, capture_time=now - i,
        first_seen=now - i, last_seen=now - i, detect_time=now - i, publish_time=now - i, model="yolov8n.pt", **extra,
    )  # fmt: skip


def test_events_query_detail_and_snapshot(station, media) -> None:
    import av
    import cv2

    app, store, _, snapshots = station
    events = [_event(i) for i in range(5)]
    store.write([Received(e, time.time(), e.model_dump_json()) for e in events])
    with av.open(str(media("vtest.avi"))) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    assert snapshots.put("ev2", "edge-1", "cam", jpeg) and not snapshots.put("ev2", "edge-1", "cam", jpeg)

    viewer, _ = _client(app, "val")
    page = viewer.get("/api/events", params={"limit": 3}).json()
    assert [e["event_id"] for e in page["items"]] == ["ev0", "ev1", "ev2"] and page["next_cursor"]
    assert [e["has_snapshot"] for e in page["items"]] == [False, False, True]
    rest = viewer.get("/api/events", params={"cursor": page["next_cursor"]}).json()
    assert [e["event_id"] for e in rest["items"]] == ["ev3", "ev4"]
    assert viewer.get("/api/events", params={"cursor": "garbage"}).status_code == 422
    assert viewer.get("/api/events", params={"min_score": 2}).status_code == 422
    detail = viewer.get("/api/events/ev2").json()
    assert detail["has_snapshot"] and detail["messages"][0]["box"]["x2"] == 50
    snap = viewer.get("/api/events/ev2/snapshot")
    assert snap.headers["content-type"] == "image/jpeg" and snap.content == jpeg
    assert viewer.get("/api/events/ev0/snapshot").status_code == 404
    assert viewer.get("/api/events/nope").status_code == 404
    stats = viewer.get("/api/stats").json()
    assert stats["total"]["objects"] == 5 and stats["by_label"][0]["key"] == "person"
    openapi = viewer.get("/api/openapi.json").json()
    assert "/api/events" in openapi["paths"]
