"""Acceptance (rules, geo space): a lat/lon geofence on the demo drone's stream raises alerts for the objects whose
ground positions are inside it and not for those outside it — tested against each object's ground position, so it
holds however the camera moves. The drone is simulated: the real aerial recording with its KLV, as MPEG-TS/UDP."""

from __future__ import annotations

import shutil
import time

import pytest
from shapely.geometry import Point, Polygon

from edge.config import parse_config
from edge.factory import build_node
from smarteye.demo import drone_geofence
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.drone import DroneSimulator
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import Alert, DetectionEvent
from tests.support.mqtt_recorder import MqttRecorder

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")]


def test_geofence_alerts_for_ground_positions_inside_and_not_outside(media, model_path, tmp_path) -> None:
    port = free_tcp_port()
    simulator = DroneSimulator(media("kwiver_aphill_short.ts"), "127.0.0.1", port)
    rules = drone_geofence(simulator.first_footprint())  # what `smarteye demo` runs on its drone
    fence = Polygon(rules["zones"][0]["points"])  # (lat, lon)
    events: list[DetectionEvent] = []
    with MosquittoBroker.secured(["drone-edge"]) as broker:
        recorder = MqttRecorder(broker, "smarteye/v1/+/alerts/#")
        config = parse_config({
            "node": "drone-edge",
            "sources": [{"name": "drone", "url": f"udp://127.0.0.1:{port}", "geo": {"telemetry": {"source": "klv"}},
                         "rules": {**rules, "clip": {"enabled": False}}}],
            "detector": {"model": str(model_path), "conf": 0.15},
            "events": {"min_hits": 2, "update_interval_s": 0.2, "update_min_move": 0.0},
            "mqtt": {**broker.client_settings("drone-edge"), "spool_dir": str(tmp_path / "spool")},
            "metrics": {"port": 0},
            "video": {"enabled": False},
        })  # fmt: skip
        node = build_node(config, on_event=events.append)
        node.start()
        try:
            time.sleep(0.5)
            simulator.start()

            def both_sides() -> bool:
                located = [e.geo for e in events if e.geo is not None]
                outside = [g for g in located if not fence.contains(Point(g.lat, g.lon))]
                return bool(recorder.snapshot("alert")) and len(outside) >= 1

            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not both_sides():
                time.sleep(0.5)
        finally:
            simulator.stop()
            node.stop()
            recorder.close()

    alerts = [Alert.model_validate(m.data) for m in recorder.snapshot("alert")]
    assert alerts, "no geofence alert for the drone's detections"
    assert all(a.rule == "in-restricted-area" and a.zone == "restricted" for a in alerts)
    for alert in alerts:
        for obj in alert.objects:
            assert obj.geo is not None and fence.contains(Point(obj.geo.lat, obj.geo.lon)), (alert.state, obj)
    located = [e for e in events if e.geo is not None]
    outside = {e.track_id for e in located if not fence.contains(Point(e.geo.lat, e.geo.lon))}
    assert outside, "no detection fell outside the geofence: the test shows nothing about them"
    # An object outside at a moment is in no alert message of that moment (a track may cross the fence's edge).
    alerted_at = {(a.capture_time, o.track_id) for a in alerts for o in a.objects}
    outside_at = {(e.capture_time, e.track_id) for e in located if not fence.contains(Point(e.geo.lat, e.geo.lon))}
    assert not (outside_at & alerted_at), outside_at & alerted_at
