"""Acceptance (rules editing, edge side): rules the station pushes retained over MQTT are applied by a running
node without a restart, its status reports the version it runs, the next alerts carry that version; a push the
stream cannot run is refused with the field named while the running rules stay; the retained rules reach a node
that starts later too."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt

from edge.config import parse_config
from edge.factory import build_node
from smarteye.sim.broker import STATION_USER, MosquittoBroker
from smarteye.wire.messages import RulesConfig
from smarteye.wire.rules import RuleSet
from smarteye.wire.topics import rules_topic
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.secure_broker import paho_client

PREFIX = "smarteye/v1"
WHOLE_FRAME = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


def _push(client: mqtt.Client, version: int, labels: list[str], rule: str = "someone") -> None:
    rules = RuleSet.model_validate({
        "version": version,
        "zones": [{"name": "scene", "points": WHOLE_FRAME, "filter": {"labels": labels}}],
        "rules": [{"name": rule, "kind": "enter", "zone": "scene", "cooldown_s": 0}],
        "clip": {"enabled": False},
    })  # fmt: skip
    message = RulesConfig(node="push", stream="cam", rules=rules, author="supervisor", time=time.time())
    client.publish(rules_topic(PREFIX, "push", "cam"), message.model_dump_json(), qos=1, retain=True).wait_for_publish(
        5
    )


def test_pushed_rules_apply_live_and_are_reported(media, model_path, tmp_path) -> None:
    with MosquittoBroker.secured(["push"]) as broker:
        station = paho_client(broker, STATION_USER, client_id="station-push")
        station.connect(broker.host, broker.port)
        station.loop_start()
        _push(station, 3, ["person"])  # retained before the node exists: it must get it when it connects
        recorder = MqttRecorder(broker, f"{PREFIX}/push/#")
        config = parse_config({
            "node": "push",
            "sources": [{"name": "cam", "url": str(media("vtest.avi")), "loop": True}],
            "detector": {"model": str(model_path), "imgsz": 320},
            "mqtt": {**broker.client_settings("push"), "spool_dir": str(tmp_path / "spool")},
            "status_interval_s": 1.0,
            "metrics": {"port": 0},
            "video": {"enabled": False},
        })  # fmt: skip
        node = build_node(config)
        node.start()
        try:
            recorder.wait_for(lambda: any(s.get("rules_version") == 3 for s in recorder.statuses("cam")), 30,
                              "the node to report rules version 3")  # fmt: skip
            recorder.wait_for(lambda: any(a.data.get("rules_version") == 3 for a in recorder.snapshot("alert")), 60,
                              "an alert raised by version 3")  # fmt: skip
            _push(station, 4, ["persn"])  # not a class of the model: refused, version 3 keeps running
            recorder.wait_for(lambda: any((s.get("rules_error") or "").endswith("unknown label 'persn'")
                                          for s in recorder.statuses("cam")), 30, "the refusal")  # fmt: skip
            assert recorder.statuses("cam")[-1]["rules_version"] == 3
            # A changed rule is a new situation (an unchanged one keeps its open alert across versions).
            _push(station, 5, ["person"], rule="someone-else")
            recorder.wait_for(lambda: recorder.statuses("cam")[-1].get("rules_version") == 5, 30, "version 5")
            assert recorder.statuses("cam")[-1]["rules_error"] is None
            recorder.wait_for(lambda: any(a.data.get("rules_version") == 5 for a in recorder.snapshot("alert")), 60,
                              "an alert of version 5")  # fmt: skip
        finally:
            node.stop()
            station.loop_stop()
            recorder.close()
    alerts = [a.data for a in recorder.snapshot("alert")]
    assert all(a["rules_version"] in (3, 5) for a in alerts)  # the refused version 4 never judged a frame
    assert {a["rule"] for a in alerts if a["rules_version"] == 5} == {"someone-else"}
    assert all(a["zone"] == "scene" for a in alerts)
