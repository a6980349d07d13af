"""Acceptance (geolocated detections): a simulated drone — real aerial video with KLV streamed as
MPEG-TS/UDP by ffmpeg, and the same flight as live MAVLink — gives events with lat/lon and an error
estimate, inside the camera footprint the sensor system itself reported; stale telemetry is flagged."""

from __future__ import annotations

import shutil
import time

import pymap3d
import pytest

from edge.config import parse_config
from edge.factory import build_node
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.drone import DroneSimulator, read_klv_track
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import DetectionEvent, GeoStatus
from tests.support.edge_process import ANY_PORT_VIDEO
from tests.support.mqtt_recorder import MqttRecorder

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")]

CLIP = "kwiver_aphill_short.ts"


def _footprint_distance_m(video, lat: float, lon: float) -> float:
    """Distance from a point to the nearest corner/centre the sensor system reported for this clip."""
    best = float("inf")
    for meta in read_klv_track(video):
        for clat, clon in [*(meta.corners or []), (meta.frame_center_lat, meta.frame_center_lon)]:
            north, east, _ = pymap3d.geodetic2ned(lat, lon, 0, clat, clon, 0)
            best = min(best, (north**2 + east**2) ** 0.5)
    return best


def _run(tmp_path, video, geo: dict, sim_mavlink: str | None, until, timeout: float = 90):
    """Events the node published, and the telemetry messages a real subscriber received."""
    port = free_tcp_port()
    events: list[DetectionEvent] = []
    with MosquittoBroker.secured(["drone-edge"]) as broker:
        recorder = MqttRecorder(broker, "smarteye/v1/+/telemetry/#")
        config = parse_config(
            {
                "node": "drone-edge",
                "sources": [{"name": "drone", "url": f"udp://127.0.0.1:{port}", "geo": geo}],
                "detector": {"model": "yolov8n.pt", "conf": 0.15},
                "events": {"min_hits": 2, "update_interval_s": 0.2, "update_min_move": 0.0},
                "mqtt": {**broker.client_settings("drone-edge"), "spool_dir": str(tmp_path / "spool")},
                "video": ANY_PORT_VIDEO,
            }
        )
        node = build_node(config, on_event=events.append)
        node.start()
        simulator = DroneSimulator(video, "127.0.0.1", port, mavlink_url=sim_mavlink)
        try:
            time.sleep(0.5)
            simulator.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not until(events, simulator):
                time.sleep(0.2)
        finally:
            simulator.stop()
            node.stop()
        recorder.close()
    return events, recorder.snapshot("telemetry")


def test_klv_drone_events_are_geolocated_inside_the_footprint(media, model_path, tmp_path) -> None:
    video = media(CLIP)
    events, telemetry = _run(tmp_path, video, {"telemetry": {"source": "klv"}}, None,
                             lambda ev, _: sum(1 for e in ev if e.geo) >= 5)  # fmt: skip
    located = [e for e in events if e.geo is not None]
    assert len(located) >= 5, [(e.type, e.label, e.geo_status) for e in events]
    for event in located:
        assert event.geo.source == "klv" and event.geo_status is GeoStatus.OK
        assert event.geo.uncertainty_m is not None and 1 < event.geo.uncertainty_m < 500
        assert event.geo.telemetry_age_s is not None and event.geo.telemetry_age_s < 0.2
        # The footprint is ~60 m across at ~1.7 km slant range; objects lie within it.
        assert _footprint_distance_m(video, event.geo.lat, event.geo.lon) < 80
    # Telemetry for the pilot map: the platform state and the camera footprint, at a bounded rate.
    assert telemetry, "no telemetry messages"
    last = telemetry[-1].data
    assert last["source"] == "klv" and last["sensor"]["sensor_lat"] == pytest.approx(38.25, abs=0.05)
    assert len(last["footprint"]) == 4
    assert all(_footprint_distance_m(video, lat, lon) < 80 for lat, lon in last["footprint"])
    span = telemetry[-1].time - telemetry[0].time
    assert len(telemetry) <= span / 0.5 + 3  # telemetry_interval_s 0.5 s


def test_mavlink_drone_events_are_geolocated_and_stale_telemetry_is_flagged(media, model_path, tmp_path) -> None:
    video = media(CLIP)
    mav_port = free_tcp_port()

    def until(events, simulator) -> bool:
        if sum(1 for e in events if e.geo) < 5:
            return False
        simulator._stop.set()  # the MAVLink link dies; the video goes on
        return any(e.geo_status is GeoStatus.STALE_TELEMETRY for e in events)

    geo = {"telemetry": {"source": "mavlink", "mavlink_url": f"udpin:127.0.0.1:{mav_port}", "stale_after_s": 1.0}}
    events, telemetry = _run(tmp_path, video, geo, f"udpout:127.0.0.1:{mav_port}", until)
    located = [e for e in events if e.geo is not None]
    assert len(located) >= 5, [(e.type, e.label, e.geo_status) for e in events]
    for event in located:
        assert event.geo.source == "mavlink" and event.geo.uncertainty_m is not None
        # Video and telemetry are two live links; allow for their relative timing on this machine.
        assert _footprint_distance_m(video, event.geo.lat, event.geo.lon) < 150
    stale = [e for e in events if e.geo_status is GeoStatus.STALE_TELEMETRY]
    assert stale and all(e.geo is None for e in stale)
    vehicles = [m.data["vehicle"] for m in telemetry if m.data["vehicle"]]
    assert vehicles and vehicles[0]["system_id"] == 1 and vehicles[0]["camera_hfov_deg"] == pytest.approx(0.8, abs=0.01)
