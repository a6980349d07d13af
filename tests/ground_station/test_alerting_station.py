"""The real GroundStation (web server, aggregator, rules push, webhooks) over a real Mosquitto, used over
real HTTP and WebSocket: an alert a node publishes is pushed live, listed, its clip served with Range and
its webhook sent; rules saved by a supervisor reach a subscriber as the retained message the edge reads,
the version the node reports shows up, and rules saved while the station was away are published when it
connects."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from ground_station.auth.roles import Role
from ground_station.rules import describe_changes
from ground_station.service import GroundStation
from ground_station.store import AlertMedia, Store
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import AlertClip, RulesConfig
from smarteye.wire.rules import RuleSet, Zone
from tests.support.accounts import FAST_HASHER
from tests.support.alerts import T0, clip_announcement, jpeg_bytes, make_alert, mp4_bytes
from tests.support.factories import make_status
from tests.support.ingest import Publisher, make_config, wait_until
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.secure_broker import secured_test_broker
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto")]
PASSWORD = "correct horse battery"
SECRET = "station-test-webhook-secret"
DOOR = {"name": "door", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6], [0.1, 0.6]]}


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoBroker]:
    with secured_test_broker() as b:
        yield b


def start_station(broker: MosquittoBroker, folder: Path, prefix: str, **overrides: object) -> GroundStation:
    config = make_config(broker, f"sqlite:///{folder / 'gs.sqlite'}", prefix,
                         web={"port": free_tcp_port(), "secure_cookies": False}, **overrides)  # fmt: skip
    station = GroundStation(config, hasher=FAST_HASHER)
    station.start()
    assert station.aggregator.wait_ready(10)
    return station


def login(station: GroundStation, user: str = "sam") -> tuple[httpx.Client, dict[str, str]]:
    if not any(u["username"] == user for u in station.accounts.list_users()):
        station.accounts.create_user(user, PASSWORD, Role.SUPERVISOR)
    http = httpx.Client(base_url=station.url, timeout=10)
    response = http.post("/api/login", json={"username": user, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return http, {"X-CSRF-Token": response.json()["csrf_token"]}


def test_an_alert_is_pushed_live_listed_served_and_sent_to_the_webhook(broker: MosquittoBroker, tmp_path: Path) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}/v1"
    with WebhookReceiver(SECRET) as receiver:
        station = start_station(broker, tmp_path, prefix,
                                webhooks={"endpoints": [{"url": receiver.url, "secret": SECRET}]})  # fmt: skip
        publisher = Publisher(broker, prefix)
        try:
            http, _ = login(station)
            ws_url = station.url.replace("http://", "ws://") + "/api/live"
            cookie = f"smarteye_session={http.cookies['smarteye_session']}"
            jpeg, mp4 = jpeg_bytes(), mp4_bytes(seconds=3)
            start = make_alert("live1", 0)
            with connect(ws_url, additional_headers={"Cookie": cookie}, open_timeout=5, close_timeout=2) as ws:
                publisher.event(start, "node1/alerts/cam1")
                publisher.publish("node1/alert-snapshots/cam1/live1", jpeg)
                publisher.publish("node1/clips/cam1/live1", mp4)
                clip = AlertClip(start_time=T0 - 5, end_time=T0 + 5, bytes=len(mp4))
                publisher.event(clip_announcement(start, clip), "node1/alerts/cam1")
                publisher.flush()
                pushed = []
                deadline = time.monotonic() + 10
                while len(pushed) < 2 and time.monotonic() < deadline:
                    message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                    if message.get("kind") == "alert":
                        pushed.append(message)
            assert [m["id"] for m in pushed] == ["live1:0", "live1:clip"]
            assert pushed[0] == json.loads(start.model_dump_json())
            assert wait_until(lambda: station.hub.clients == 0, 2)  # the closed client is gone at once

            assert wait_until(lambda: station.store.alert_clip("live1") is not None)
            listed = http.get("/api/alerts", params={"node": "node1"}).json()["items"]
            assert [(a["alert_id"], a["clip_url"]) for a in listed] == [("live1", "/api/alerts/live1/clip")]
            assert http.get("/api/alerts/live1/snapshot").content == jpeg
            part = http.get("/api/alerts/live1/clip", headers={"Range": "bytes=0-1023"})
            assert part.status_code == 206 and part.content == mp4[:1024]
            assert part.headers["content-range"] == f"bytes 0-1023/{len(mp4)}"

            hooks = receiver.wait_for(2)
            assert [h.data["id"] for h in hooks] == ["live1:0", "live1:clip"] and all(h.signed for h in hooks)
            endpoints = http.get("/api/webhooks").json()
            assert [(e["url"], e["delivered"]) for e in endpoints] == [(receiver.url, 2)]
        finally:
            publisher.close()
            station.stop()


def test_rules_saved_reach_the_edge_retained_and_its_version_shows(broker: MosquittoBroker, tmp_path: Path) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}/v1"
    topic = f"{prefix}/node1/rules/cam1"
    # Saved while the station was away (e.g. it stopped before the broker acknowledged): published on connect.
    with Store(f"sqlite:///{tmp_path / 'gs.sqlite'}") as store:
        store.save_rules("node1", "cam2", RuleSet(zones=[Zone.model_validate(DOOR)]), "ada", describe_changes)
    station = start_station(broker, tmp_path, prefix)
    publisher = Publisher(broker, prefix)
    watcher = MqttRecorder(broker, topic)
    try:
        late = MqttRecorder(broker, f"{prefix}/node1/rules/cam2", user="node1")
        late.wait_for(lambda: bool(late.snapshot()), 10, "the rules saved while the station was away")
        assert late.snapshot()[0].data["rules"]["version"] == 1 and late.snapshot()[0].retain
        assert wait_until(lambda: station.store.current_rules("node1", "cam2").published_time is not None)  # type: ignore[union-attr]
        late.close()

        http, csrf = login(station)
        body = {"zones": [DOOR], "rules": [{"name": "door-enter", "kind": "enter", "zone": "door"}]}
        bad = http.put("/api/rules/node1/cam1", json={"zones": [{**DOOR, "points": [[0, 0], [2, 0], [0, 1]]}]},
                       headers=csrf)  # fmt: skip
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "zones", 0]
        saved = http.put("/api/rules/node1/cam1", json=body, headers=csrf)
        assert saved.json() == {"node": "node1", "stream": "cam1", "version": 1, "published": True}

        edge = MqttRecorder(broker, topic, user="node1")  # subscribes after the save: gets the retained copy
        edge.wait_for(lambda: bool(edge.snapshot()), 10, "the retained rules")
        (received,) = edge.snapshot()
        pushed = RulesConfig.model_validate(received.data)
        assert received.retain and (pushed.node, pushed.stream, pushed.author) == ("node1", "cam1", "sam")
        assert pushed.rules.version == 1 and pushed.rules.rules[0].name == "door-enter"
        edge.close()
        current = http.get("/api/rules/node1/cam1").json()
        assert current["published"] and not current["in_sync"] and current["edge"] is None

        status = make_status("node1", "cam1", time=time.time()).model_copy(update={"rules_version": 1})
        publisher.publish("node1/status/cam1", status.model_dump_json(), retain=True)
        publisher.flush()
        assert wait_until(lambda: http.get("/api/rules/node1/cam1").json()["in_sync"])
        refused = status.model_copy(update={"rules_error": "pushed rules: rules.zones[0].filter.labels: unknown "
                                                           "label 'kite'", "time": status.time + 1})  # fmt: skip
        publisher.publish("node1/status/cam1", refused.model_dump_json(), retain=True)
        publisher.flush()
        assert wait_until(lambda: http.get("/api/rules/node1/cam1").json()["edge"]["rules_error"] is not None)

        cleared = http.delete("/api/rules/node1/cam1", headers=csrf).json()
        assert (cleared["version"], cleared["published"]) == (2, True)
        watcher.wait_for(lambda: len(watcher.snapshot()) == 2, 10, "the rules, then their clearing")
        assert [m.data.get("raw", "rules") for m in watcher.snapshot()] == ["rules", ""]  # an empty payload
        nobody = MqttRecorder(broker, topic, user="node1")
        time.sleep(0.5)
        assert nobody.snapshot() == []  # nothing retained any more: the node runs its YAML rules
        nobody.close()
        rules_audit = http.get("/api/audit", params={"action": ["rules.save", "rules.clear"]}).json()["items"]
        assert [e["action"] for e in rules_audit] == ["rules.clear", "rules.save", "rules.save"]
    finally:
        watcher.close()
        publisher.close()
        station.stop()


def test_media_of_an_alert_are_served_only_from_its_own_node(tmp_path: Path) -> None:
    """(The store refuses another node's media on ingest; here: media stored before the alert arrived.)"""
    with Store(f"sqlite:///{tmp_path / 'gs.sqlite'}") as store:
        store.write_batch([], media=[AlertMedia("snapshot", "x1", "node2", "cam1", b"\xff\xd8\xff forged")])
        from ground_station.store import Received

        store.write_batch([Received(make_alert("x1", 0), time.time(), make_alert("x1", 0).model_dump_json())])
        assert store.alert_snapshot("x1") is None and not store.get_alert("x1").has_snapshot  # type: ignore[union-attr]
