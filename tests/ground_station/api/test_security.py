"""Station web security (issue 12): login throttling and its audit, bounded password hashing, the last admin,
WebSockets that refuse other origins and close when their credential is revoked, and the live feed's
telemetry filter on parsed fields."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ground_station.api.app import create_app
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.auth.accounts import Accounts
from ground_station.auth.roles import Role
from ground_station.auth.throttle import LoginThrottle, ThrottlePolicy
from ground_station.snapshots import Snapshots
from ground_station.store.store import Store
from tests.support.accounts import FAST_HASHER
from tests.support.polling import wait_for

PASSWORD = "correct horse battery"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingHasher(PasswordHasher):
    """Real argon2id; also records how many verifications ran at once (each held a little longer)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192)
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(0.1)
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def station(tmp_path, clock):
    store = Store(f"sqlite:///{tmp_path / 'gs.sqlite'}")
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    accounts.create_user("ada", PASSWORD, Role.ADMIN)
    accounts.create_user("val", PASSWORD, Role.VIEWER)
    accounts.create_user("pia", PASSWORD, Role.PILOT)
    hub = LiveHub()
    throttle = LoginThrottle(ThrottlePolicy(5), ThrottlePolicy(8), clock=clock)
    app = create_app(store, accounts, Snapshots(store.engine), hub, TelemetryCache(), secure_cookies=None,
                     throttle=throttle, recheck_s=0.1)  # fmt: skip
    yield app, store, accounts, hub
    store.close()


def _login(client: TestClient, user: str, password: str = PASSWORD):
    return client.post("/api/login", json={"username": user, "password": password})


def _admin(app) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app)
    response = _login(client, "ada")
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": response.json()["csrf_token"]}


def test_failed_logins_back_off_per_account_with_429_and_retry_after(station, clock) -> None:
    app, store, _, _ = station
    client = TestClient(app)
    for _ in range(5):
        assert _login(client, "val", "wrong password!").status_code == 401
    refused = _login(client, "val")  # even the right password is not checked while the account waits
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "account" in refused.json()["detail"]
    clock.now += 1.01
    assert _login(client, "val", "wrong password!").status_code == 401  # the 6th failure: now 2 s
    assert _login(client, "val").headers.get("Retry-After") == "2"
    assert _login(client, "pia").status_code == 200  # other accounts are not held back
    clock.now += 2.01
    assert _login(client, "val").status_code == 200
    audit = store.query_audit(action=["login", "login.failure"]).entries
    assert [(e.action, e.actor) for e in audit] == [
        ("login", "val"), ("login", "pia"), *[("login.failure", "val")] * 6
    ]  # fmt: skip
    assert audit[2].target == "testclient" and audit[2].detail["failures"] == 6


def test_one_address_guessing_many_accounts_is_throttled(station, clock) -> None:
    client = TestClient(station[0])
    for i in range(8):
        assert _login(client, f"user{i}", "wrong password!").status_code == 401
    refused = _login(client, "ada")
    assert refused.status_code == 429 and "address" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1


def test_throttle_forgets_and_stays_bounded(clock) -> None:
    throttle = LoginThrottle(ThrottlePolicy(1), ThrottlePolicy(1), forget_after_s=60, max_keys=50, clock=clock)
    for i in range(1000):
        throttle.failed(f"spray{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._failures) <= 50  # a spray of names cannot grow memory
    throttle.failed("ada", "10.9.9.9")
    throttle.failed("ada", "10.9.9.9")
    assert throttle.retry_after("ada", "10.9.9.8")[1] == "account"
    clock.now += 61
    throttle.failed("ada", "10.9.9.7")  # a failure long after the last one starts a fresh count
    assert throttle.failures("account", "ada") == 1
    assert throttle.retry_after("ada", "10.9.9.8") == (1.0, "account")  # 1 s again, not the 4 s of a 3rd failure
    clock.now += 1.01
    assert throttle.retry_after("ada", "10.9.9.8") == (0.0, None)


def test_at_most_two_password_checks_run_at_once_the_rest_get_503(tmp_path) -> None:
    with Store(f"sqlite:///{tmp_path / 'gs.sqlite'}") as store:
        hasher = CountingHasher()
        accounts = Accounts(store.engine, hasher=hasher, max_concurrent_hashes=2, hash_wait_s=0.02)
        accounts.create_user("ada", PASSWORD, Role.ADMIN)
        app = create_app(store, accounts, Snapshots(store.engine), LiveHub(), TelemetryCache())
        client = TestClient(app)
        with ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda i: _login(client, f"guess{i}", "wrong password!"), range(12)))
        statuses = sorted(r.status_code for r in responses)
        assert hasher.peak == 2
        assert set(statuses) == {401, 503} and statuses.count(503) >= 6, statuses
        busy = next(r for r in responses if r.status_code == 503)
        assert busy.headers["Retry-After"] == "1" and "try again" in busy.json()["detail"]


def test_an_admin_token_cannot_remove_the_last_admin_and_empty_changes_are_refused(station) -> None:
    app, _, accounts, _ = station
    _, token = accounts.create_token("ops", Role.ADMIN, "ada")
    ops = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert ops.patch("/api/users/val", json={}).status_code == 422  # was a 500 (an empty UPDATE)
    assert "nothing to change" in ops.patch("/api/users/val", json={}).json()["detail"][0]["msg"]
    assert ops.delete("/api/users/ada").status_code == 409
    assert ops.patch("/api/users/ada", json={"role": "viewer"}).status_code == 409
    assert ops.patch("/api/users/ada", json={"disabled": True}).status_code == 409
    assert accounts.count_admins() == 1
    assert ops.patch("/api/users/pia", json={"role": "admin"}).status_code == 200
    assert ops.patch("/api/users/ada", json={"role": "viewer"}).status_code == 200  # another admin remains
    assert ops.delete("/api/users/nobody").status_code == 404
    assert ops.patch("/api/users/val", json={"rol": "admin"}).status_code == 422  # a misspelt field is not ignored


def test_route_422s_have_the_documented_validation_error_shape(station) -> None:
    app = station[0]
    admin, csrf = _admin(app)
    bad_cursor = admin.get("/api/events", params={"cursor": "garbage"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json() == {"detail": [{"loc": [], "msg": "cursor: invalid cursor", "type": "value_error"}]}
    body = {"username": "ada", "password": PASSWORD, "role": "viewer"}
    assert admin.post("/api/users", json=body, headers=csrf).status_code == 409  # exists already: a conflict


def test_live_socket_refuses_other_origins(station) -> None:
    app = station[0]
    client, _ = _admin(app)
    evil = {"Origin": "https://evil.example"}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/api/live", headers=evil):
        pass
    assert refused.value.code == 4403
    with client.websocket_connect("/api/live", headers={"Origin": "http://testserver"}) as ws:
        ws.send_text("hello")  # accepted: same origin


def test_revoking_a_token_or_disabling_a_user_closes_their_live_sockets(station) -> None:
    app = station[0]
    admin, csrf = _admin(app)
    created = admin.post("/api/tokens", json={"name": "wall", "role": "viewer"}, headers=csrf).json()
    viewer = TestClient(app)
    assert _login(viewer, "val").status_code == 200
    wall = TestClient(app, headers={"Authorization": f"Bearer {created['token']}"})
    with wall.websocket_connect("/api/live") as by_token, viewer.websocket_connect("/api/live") as by_session:
        assert admin.delete(f"/api/tokens/{created['id']}", headers=csrf).status_code == 200
        closed = by_token.receive()
        assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
        assert admin.patch("/api/users/val", json={"disabled": True}, headers=csrf).status_code == 200
        closed = by_session.receive()
        assert (closed["type"], closed["code"]) == ("websocket.close", 4401)

    def closures() -> set[tuple[str, str, str]]:  # each closure is audited, once the socket is closed
        entries = admin.get("/api/audit", params={"action": "access.ended"}).json()["items"]
        return {(e["actor"], e["target"], e["detail"]["via"]) for e in entries}

    wait_for(lambda: closures() == {("token:wall", "live", "token"), ("val", "live", "session")})


def test_live_telemetry_filter_reads_the_kind_field_not_the_text(station) -> None:
    app, _, _, hub = station
    viewer = TestClient(app)
    assert _login(viewer, "val").status_code == 200
    with viewer.websocket_connect("/api/live") as ws:
        deadline = time.monotonic() + 5
        while hub.clients == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Escaped, the text does not contain "telemetry"; parsed, it is telemetry: a viewer must not get it.
        hub.publish('{"kind":"telem\\u0065try","node":"n1","lat":48.1}')
        hub.publish('{"kind":"telemetry","node":"n1"}', kind="event")  # the topic's kind wins
        # An event whose text contains the old filter's pattern is still an event.
        hub.publish('{"kind":"event","label":"\\"kind\\":\\"telemetry\\""}')
        assert ws.receive_json() == {"kind": "telemetry", "node": "n1"}
        assert ws.receive_json()["label"] == '"kind":"telemetry"'


def test_revoking_a_node_token_stops_its_video_uplink(video_station) -> None:
    """The uplink re-checks its token (every 2 s, the product's default): revoked, the socket is closed and the
    relay forgets the node's uplink."""
    edge = TestClient(video_station.app, headers={"Authorization": f"Bearer {video_station.edge_token}"})
    with edge.websocket_connect("/api/video/uplink?node=e1") as uplink:
        deadline = time.monotonic() + 5
        while video_station.relay.stats.uplinks == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        token_id = next(t["id"] for t in video_station.accounts.list_tokens() if t["name"] == "e1")
        video_station.accounts.revoke_token(token_id)  # as `smarteye ground-station` or the API would
        revoked_at = time.monotonic()
        closed = uplink.receive()
        assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
        assert time.monotonic() - revoked_at < 5
    assert "e1" not in video_station.relay._uplinks
