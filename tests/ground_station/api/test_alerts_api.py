"""The rules-and-alerts API against the real app (httpx through the ASGI app, a real SQLite store):
authentication and roles on every route, alert filters, snapshot and clip (with HTTP Range), acknowledge
and resolve with who and when in the audit log, rules validation naming the field, webhook deliveries."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ground_station.api.app import create_app
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.auth.accounts import Accounts
from ground_station.auth.roles import Role
from ground_station.config import WebhooksConfig
from ground_station.snapshots import Snapshots
from ground_station.store import AlertMedia, Received, Store
from ground_station.webhooks import WebhookDispatcher
from smarteye.wire.messages import AlertClip, AlertState
from smarteye.wire.rules import RuleKind, Severity
from tests.support.accounts import FAST_HASHER
from tests.support.alerts import T0, clip_announcement, jpeg_bytes, make_alert, make_counts, mp4_bytes
from tests.support.factories import make_status

PASSWORD = "correct horse battery"
ALERTING = ("/api/alerts", "/api/counts", "/api/rules", "/api/audit", "/api/webhooks")
# Routes every reader may use; the rest of ALERTING needs the supervise permission (admin, supervisor).
READ_ONLY = {("GET", "/api/alerts"), ("GET", "/api/alerts/x"), ("GET", "/api/alerts/x/snapshot"),
             ("GET", "/api/alerts/x/clip"), ("GET", "/api/counts/x/x"), ("GET", "/api/rules"),
             ("GET", "/api/rules/x/x"), ("GET", "/api/alerts/x/confirmation")}  # fmt: skip
DOOR = {"name": "door", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6], [0.1, 0.6]]}
ENTER = {"name": "door-enter", "kind": "enter", "zone": "door", "severity": "critical"}


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    folder: Path = tmp_path_factory.mktemp("alerts-api")
    store = Store(f"sqlite:///{folder / 'gs.sqlite'}")
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    accounts.create_user("sam", PASSWORD, Role.SUPERVISOR)  # one real login: the cookie + CSRF path
    tokens = {role: accounts.create_token(role.value, role, "test")[1] for role in Role}
    app = create_app(store, accounts, Snapshots(store.engine), LiveHub(), TelemetryCache(), secure_cookies=False)
    yield SimpleNamespace(app=app, store=store, tokens=tokens, accounts=accounts)
    store.close()


def client(station: SimpleNamespace, role: Role | None = None) -> TestClient:
    headers = {"Authorization": f"Bearer {station.tokens[role]}"} if role is not None else {}
    return TestClient(station.app, headers=headers)


def alerting_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    routes = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(ALERTING):
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            routes += [(method, path) for method in sorted(route.methods) if method != "HEAD"]
    return routes


def test_every_alerting_route_needs_authentication_and_the_right_role(station: SimpleNamespace) -> None:
    routes = alerting_routes(station.app)
    assert len(routes) >= 15 and set(routes) > READ_ONLY
    for method, path in routes:
        assert client(station).request(method, path, json={}).status_code == 401, (method, path)
    for role in (Role.VIEWER, Role.PILOT, Role.EDGE, Role.SUPERVISOR, Role.ADMIN):
        api = client(station, role)
        for method, path in routes:
            status = api.request(method, path, json={}).status_code
            allowed = role in (Role.SUPERVISOR, Role.ADMIN) or (role is not Role.EDGE and (method, path) in READ_ONLY)
            assert (status != 403) == allowed and status != 401, (role, method, path, status)


def store_alerts(store: Store) -> dict[str, bytes]:
    jpeg, mp4 = jpeg_bytes(), mp4_bytes()
    clip = AlertClip(start_time=T0 - 5, end_time=T0 + 5, bytes=len(mp4))
    messages = [
        make_alert("f1", 0, start_time=T0 + 1),
        make_alert("f1", 1, objects=2, start_time=T0 + 1),
        clip_announcement(make_alert("f1", 0, start_time=T0 + 1), clip),
        make_alert("f2", 0, node="node2", kind=RuleKind.CROSS, rule="gate", severity=Severity.CRITICAL,
                   start_time=T0 + 2),
        make_alert("f3", 0, stream="cam2", start_time=T0 + 3),
        make_alert("f3", 1, AlertState.END, stream="cam2", start_time=T0 + 3),
    ]  # fmt: skip
    media = [AlertMedia("snapshot", "f1", "node1", "cam1", jpeg), AlertMedia("clip", "f1", "node1", "cam1", mp4)]
    now = time.time()
    store.write_batch([Received(m, now, m.model_dump_json()) for m in messages], media=media)
    return {"jpeg": jpeg, "mp4": mp4}


def test_alerts_list_filter_detail_snapshot_and_clip(station: SimpleNamespace) -> None:
    data = store_alerts(station.store)
    viewer = client(station, Role.VIEWER)

    def ids(**params: object) -> list[str]:
        response = viewer.get("/api/alerts", params={"start": T0, "end": T0 + 10, **params})
        assert response.status_code == 200, response.text
        return [a["alert_id"] for a in response.json()["items"]]

    assert ids() == ["f3", "f2", "f1"]
    assert ids(node="node2") == ["f2"] and ids(node=["node1", "node2"], stream="cam1") == ["f2", "f1"]
    assert ids(severity="critical") == ["f2"] and ids(rule="gate") == ["f2"]
    assert ids(state="end") == ["f3"] and ids(state=["start", "update"]) == ["f2", "f1"]
    assert ids(acknowledged=False) == ["f3", "f2", "f1"] and ids(resolved=True) == []
    page = viewer.get("/api/alerts", params={"start": T0, "end": T0 + 10, "limit": 2}).json()
    rest = viewer.get("/api/alerts", params={"start": T0, "end": T0 + 10, "cursor": page["next_cursor"]}).json()
    assert [a["alert_id"] for a in page["items"] + rest["items"]] == ["f3", "f2", "f1"]
    assert viewer.get("/api/alerts", params={"severity": "apocalyptic"}).status_code == 422
    assert viewer.get("/api/alerts", params={"cursor": "garbage"}).status_code == 422

    detail = viewer.get("/api/alerts/f1").json()
    assert (detail["state"], detail["count"], detail["rule_kind"], detail["severity"]) == ("update", 2, "enter",
                                                                                           "warning")  # fmt: skip
    assert [m["id"] for m in detail["messages"]] == ["f1:0", "f1:clip", "f1:1"]
    assert detail["clip"]["bytes"] == len(data["mp4"])
    assert detail["snapshot_url"] == "/api/alerts/f1/snapshot" and detail["clip_url"] == "/api/alerts/f1/clip"
    assert detail["objects"][0]["box_norm"]["x1"] == 0.13 and detail["acknowledged_by"] is None
    assert viewer.get("/api/alerts/f2").json()["snapshot_url"] is None  # announced, not received
    assert viewer.get("/api/alerts/nope").status_code == 404

    snapshot = viewer.get("/api/alerts/f1/snapshot")
    assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.content == data["jpeg"]
    assert viewer.get("/api/alerts/f2/snapshot").status_code == 404
    assert viewer.get("/api/alerts/f2/clip").status_code == 404


def test_the_clip_is_served_with_http_ranges(station: SimpleNamespace) -> None:
    if station.store.get_alert("f1") is None:
        store_alerts(station.store)
    mp4 = station.store.alert_clip("f1")
    assert mp4 is not None
    viewer, size = client(station, Role.VIEWER), len(mp4)
    whole = viewer.get("/api/alerts/f1/clip")
    assert whole.status_code == 200 and whole.content == mp4
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    end = size - 1
    asks = [("bytes=0-99", 0, 99), ("bytes=100-", 100, end), ("bytes=-50", size - 50, end),
            ("bytes=10-999999999", 10, end), (f"bytes={end}-{end}", end, end)]  # fmt: skip
    for asked, first, last in asks:
        part = viewer.get("/api/alerts/f1/clip", headers={"Range": asked})
        assert part.status_code == 206, asked
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", asked
        assert part.content == mp4[first : last + 1] and int(part.headers["content-length"]) == last - first + 1
    past = viewer.get("/api/alerts/f1/clip", headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    for ignored in ("bytes=0-1,5-9", "items=0-1", "bytes=9-2", "bytes=x-"):  # served whole, as the RFC allows
        assert viewer.get("/api/alerts/f1/clip", headers={"Range": ignored}).status_code == 200, ignored
    assert viewer.get("/api/alerts/f1/clip", headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert viewer.get("/api/alerts/f1/clip", headers={"Range": "bytes=0-9", "If-Range": '"old"'}).status_code == 200


def test_acknowledge_and_resolve_record_who_and_when_in_the_audit_log(station: SimpleNamespace) -> None:
    now = time.time()
    station.store.write_batch([Received(m, now, m.model_dump_json()) for m in (make_alert("k1"), make_alert("k2"))])
    browser = TestClient(station.app)
    csrf = {"X-CSRF-Token": browser.post("/api/login", json={"username": "sam", "password": PASSWORD}).json()[
        "csrf_token"]}  # fmt: skip
    assert browser.post("/api/alerts/k1/acknowledge", json={"note": "on my way"}).status_code == 403  # no CSRF token
    acked = browser.post("/api/alerts/k1/acknowledge", json={"note": "on my way"}, headers=csrf)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "sam" and now <= acked.json()["acknowledged_time"] <= time.time()
    again = client(station, Role.ADMIN).post("/api/alerts/k1/acknowledge")
    assert again.status_code == 409 and "acknowledged by sam" in again.json()["detail"]
    resolved = client(station, Role.ADMIN).post("/api/alerts/k1/resolve", json={"note": "a cat"}).json()
    assert (resolved["resolved_by"], resolved["acknowledged_by"]) == ("token:admin", "sam")
    assert browser.post("/api/alerts/k2/resolve", headers=csrf).json()["acknowledged_by"] == "sam"  # no body needed
    assert client(station, Role.VIEWER).post("/api/alerts/k2/acknowledge").status_code == 403
    assert client(station, Role.ADMIN).post("/api/alerts/nope/resolve").status_code == 404
    assert (
        client(station, Role.VIEWER).get("/api/alerts", params={"resolved": True, "start": now - 60}).status_code == 200
    )

    alert_actions = ["alert.acknowledge", "alert.resolve"]  # (logins are audited too)
    audit = client(station, Role.SUPERVISOR).get("/api/audit", params={"start": now, "action": alert_actions})
    audit = audit.json()["items"]
    assert [(e["actor"], e["action"], e["target"], e["detail"]) for e in audit][:3] == [
        ("sam", "alert.resolve", "k2", {"note": None}),
        ("token:admin", "alert.resolve", "k1", {"note": "a cat"}),
        ("sam", "alert.acknowledge", "k1", {"note": "on my way"}),
    ]
    only_sam = client(station, Role.ADMIN).get(
        "/api/audit", params={"start": now, "actor": "sam", "action": alert_actions}
    )
    only_sam = only_sam.json()["items"]
    assert [e["target"] for e in only_sam] == ["k2", "k1"]
    assert client(station, Role.PILOT).get("/api/audit").status_code == 403


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"zones": [{**DOOR, "points": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}]}, ["body", "zones", 0],
         "the polygon is not simple"),
        ({"zones": [{**DOOR, "points": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.6]]}]}, ["body", "zones", 0],
         "point 1 (1.5, 0.1) is outside 0..1"),
        ({"zones": [DOOR], "rules": [{**ENTER, "zone": "window"}]}, ["body"], "rules[0].zone: no zone named 'window'"),
        ({"zones": [DOOR], "rules": [{**ENTER, "kind": "loiter"}]}, ["body", "rules", 0], "duration_s"),
        ({"zones": [{**DOOR, "filter": {"min_score": 2}}]}, ["body", "zones", 0, "filter", "min_score"], "less than"),
        ({"zones": [DOOR], "colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_rules_are_refused_naming_the_field_and_nothing_is_stored(
    station: SimpleNamespace, body: dict[str, object], where: list[object], says: str
) -> None:
    supervisor = client(station, Role.SUPERVISOR)
    response = supervisor.put("/api/rules/node9/cam1", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == where and says in e["msg"] for e in errors), errors
    assert supervisor.get("/api/rules/node9/cam1").json()["version"] is None
    assert station.store.current_rules("node9", "cam1") is None
    assert client(station, Role.SUPERVISOR).put("/api/rules/no%20de/cam1", json={}).status_code == 422  # bad name


def test_rules_versions_without_a_broker_are_stored_unpublished_with_author_and_changes(
    station: SimpleNamespace,
) -> None:
    supervisor, admin = client(station, Role.SUPERVISOR), client(station, Role.ADMIN)
    saved = supervisor.put("/api/rules/node1/cam1", json={"version": 99, "zones": [DOOR], "rules": [ENTER]})
    assert saved.json() == {"node": "node1", "stream": "cam1", "version": 1, "published": False}
    assert admin.put("/api/rules/node1/cam1", json={}, params={"base_version": 0}).status_code == 409
    assert admin.put("/api/rules/node1/cam1", json={"zones": [DOOR]}, params={"base_version": 1}).json()["version"] == 2
    station.store.write([Received(make_status("node1", "cam1"), time.time(), make_status("node1", "cam1")
                                  .model_copy(update={"rules_version": 1}).model_dump_json())])  # fmt: skip
    current = client(station, Role.VIEWER).get("/api/rules/node1/cam1").json()
    assert (current["version"], current["author"]) == (2, "token:admin")
    assert not current["published"] and not current["in_sync"]  # no broker here; the node runs version 1
    assert current["rules"]["version"] == 2 and current["rules"]["zones"][0]["name"] == "door"
    assert current["edge"]["rules_version"] == 1 and current["edge"]["rules_error"] is None
    overview = {(s["node"], s["stream"]): s for s in client(station, Role.VIEWER).get("/api/rules").json()}
    assert overview[("node1", "cam1")]["version"] == 2
    cleared = supervisor.delete("/api/rules/node1/cam1").json()
    assert cleared["version"] == 3 and supervisor.get("/api/rules/node1/cam1").json()["rules"] is None
    versions = supervisor.get("/api/rules/node1/cam1/versions").json()
    assert [(v["version"], v["author"]) for v in versions] == [(3, "token:supervisor"), (2, "token:admin"),
                                                                (1, "token:supervisor")]  # fmt: skip
    log = supervisor.get("/api/audit", params={"target": "node1/cam1"}).json()["items"]
    assert [e["detail"]["changes"] for e in log] == [
        ["rules cleared: the stream runs its node's own rules"],
        ["rule 'door-enter' removed"],
        ["zone 'door' added", "rule 'door-enter' added"],
    ]


def test_counts_series_and_webhook_lists(station: SimpleNamespace) -> None:
    now = time.time()
    counts = [make_counts(stream="cnt", time=T0 + i, people=i) for i in range(5)]
    station.store.write_batch([Received(c, now, c.model_dump_json()) for c in counts])
    series = client(station, Role.VIEWER).get("/api/counts/node1/cnt", params={"start": T0 + 1, "limit": 3}).json()
    assert [p["zones"]["door"] for p in series["points"]] == [2, 3, 4] and series["truncated"]
    assert series["points"][0]["lines"] == {"gate": {"in": 2, "out": 1}}
    supervisor = client(station, Role.SUPERVISOR)
    assert supervisor.get("/api/webhooks").json() == []  # none configured for this app
    assert supervisor.get("/api/webhooks/deliveries").json() == {"items": [], "next_cursor": None}
    assert supervisor.get("/api/webhooks/deliveries", params={"state": "lost"}).status_code == 422
    assert supervisor.post("/api/webhooks/deliveries/123/retry").status_code == 404
    openapi = supervisor.get("/api/openapi.json").json()
    assert {"/api/alerts", "/api/alerts/{alert_id}/clip", "/api/rules/{node}/{stream}", "/api/audit"} <= set(
        openapi["paths"]
    )
    put = openapi["paths"]["/api/rules/{node}/{stream}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RuleSet")


def test_webhook_endpoints_deliveries_failures_and_retry(station: SimpleNamespace) -> None:
    config = WebhooksConfig.model_validate({"endpoints": [
        {"url": "https://user:pw@hooks.example.org:8443/in/smarteye?token=abc", "secret": "x" * 16},
        {"url": "http://127.0.0.1:9/critical", "secret": "y" * 16, "min_severity": "critical"},
    ]})  # fmt: skip
    dispatcher = WebhookDispatcher(config, station.store)  # not started: nothing is sent, deliveries wait
    app = create_app(station.store, station.accounts, Snapshots(station.store.engine), LiveHub(), TelemetryCache(),
                     secure_cookies=False, webhooks=dispatcher)  # fmt: skip
    now = time.time()
    messages = [make_alert("w1"), make_alert("w2", severity=Severity.CRITICAL)]
    station.store.write_batch([Received(m, now, m.model_dump_json()) for m in messages],
                              webhook_targets=dispatcher.targets)  # fmt: skip
    first = config.endpoints[0].url
    w1 = station.store.query_deliveries(alert_id="w1").deliveries[0]
    station.store.delivery_failed(w1.id, "HTTP 503 Service Unavailable", 503, None, now)
    supervisor = TestClient(app, headers={"Authorization": f"Bearer {station.tokens[Role.SUPERVISOR]}"})

    endpoints = supervisor.get("/api/webhooks").json()
    assert [(e["url"], e["pending"], e["failed"]) for e in endpoints] == [
        ("https://hooks.example.org:8443/in/smarteye", 1, 1),  # no credentials, no token from the query
        ("http://127.0.0.1:9/critical", 1, 0),
    ]
    assert endpoints[1]["min_severity"] == "critical" and endpoints[0]["states"] == ["start", "update", "end"]
    failed = supervisor.get("/api/webhooks/deliveries", params={"state": "failed"}).json()["items"]
    assert [(d["alert_id"], d["last_status"], d["last_error"], d["attempts"]) for d in failed] == [
        ("w1", 503, "HTTP 503 Service Unavailable", 1)
    ]
    mine = supervisor.get("/api/webhooks/deliveries", params={"endpoint": endpoints[1]["endpoint"]}).json()["items"]
    assert [d["alert_id"] for d in mine] == ["w2"] and "abc" not in str(
        supervisor.get("/api/webhooks/deliveries").json()
    )
    assert supervisor.get("/api/webhooks/deliveries", params={"endpoint": "nope"}).status_code == 404
    retried = supervisor.post(f"/api/webhooks/deliveries/{w1.id}/retry")
    assert retried.status_code == 200 and (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    assert supervisor.post(f"/api/webhooks/deliveries/{w1.id}/retry").status_code == 409  # pending, not failed
    audit = supervisor.get("/api/audit", params={"action": "webhook.retry"}).json()["items"]
    assert [(e["actor"], e["target"]) for e in audit] == [("token:supervisor", str(w1.id))]
    assert station.store.delivery_summary()[first] == {"pending": 2, "delivered": 0, "failed": 0}
