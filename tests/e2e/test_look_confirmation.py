"""Precise feedback through the whole geometry chain: the drone's own edge node confirms what it was sent to see.

Real processes and links: the copter simulator (MAVLink to the station over TCP, and the same telemetry to
the edge node over UDP, as MAVProxy's --out would), `smarteye edge` with a video file as the drone's camera
(vtest.avi: people walking) geolocating its detections from that telemetry, Mosquitto, and the ground station
commanding the copter. Looking at a point with the camera on it (ROI), the people near the picture's centre
geolocate within the confirmation radius of the target and the alert is confirmed; with the camera pointed
away (above the horizon: nothing geolocates) the next look stays "not seen".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ground_station.command.planner import Target, distance_m, moved
from ground_station.service import GroundStation
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.copter import CopterSimulator
from smarteye.sim.ports import free_tcp_port, free_udp_port
from tests.support.accounts import FAST_HASHER
from tests.support.edge_process import EdgeProcess, write_config
from tests.support.ingest import make_config, wait_until

HOME = (36.3725, 127.3650, 60.0)
pytestmark = pytest.mark.slow


def _where(station: GroundStation, plan: dict) -> list[tuple[str, int | None]]:
    """The drone stream's latest events: geolocation status and distance to the target (for a failure)."""
    target = plan["target"]["lat"], plan["target"]["lon"]
    events = [e.message() for e in station.store.query_events(stream="drone", limit=40).events]
    return [(str(e.geo_status), e.geo and round(distance_m(e.geo.lat, e.geo.lon, *target))) for e in events]


def test_detections_from_the_drones_own_stream_confirm_a_look_and_a_camera_pointed_away_does_not(
    media, model_path, tmp_path: Path
) -> None:
    mavlink_port, edge_port = free_tcp_port(), free_udp_port()
    sim = CopterSimulator(f"tcpin:127.0.0.1:{mavlink_port}", home=HOME, speedup=5.0, camera_hfov_deg=60.0,
                          telemetry_out=(f"udpout:127.0.0.1:{edge_port}",)).start()  # fmt: skip
    with MosquittoBroker.secured(["drone-node"]) as broker:
        station = GroundStation(
            make_config(
                broker,
                f"sqlite:///{tmp_path / 'gs.sqlite'}",
                "smarteye/v1",
                command={
                    "vehicles": [
                        {"name": "copter1", "url": f"tcp:127.0.0.1:{mavlink_port}", "stream": "drone-node/drone"}
                    ],
                    "standoff_m": 40,
                    "altitude_above_target_m": 30,
                    "confirm_radius_m": 15,
                    "confirm_window_s": 30,  # generous: a loaded machine detects a frame a second
                },
            ),
            hasher=FAST_HASHER,
        )
        station.aggregator.start()
        station.commander.start()
        config = write_config(
            tmp_path / "edge.yaml",
            node="drone-node",
            sources=[{
                "name": "drone", "url": str(media("vtest.avi")), "loop": True, "realtime": True,
                "geo": {"telemetry": {"source": "mavlink", "mavlink_url": f"udpin:127.0.0.1:{edge_port}"},
                        "camera": {"hfov_deg": 60.0}, "ground_elevation_m": HOME[2]},
            }],
            detector={"model": str(model_path), "imgsz": 320},
            events={"update_interval_s": 0.5},
            mqtt={**broker.client_settings("drone-node"), "spool_dir": str(tmp_path / "spool")},
            video={"enabled": False},
        )  # fmt: skip
        try:
            with EdgeProcess(config, tmp_path / "edge.log") as edge:
                assert wait_until(lambda: station.commander.status("copter1")["home"] is not None, 30)
                assert all(o.ok for o in station.commander.takeoff("copter1", 30, "pia")), edge.log
                assert wait_until(lambda: sim.snapshot().rel_alt > 29.5, 30)
                # The drone's node is up and detecting (its model may be exported on a first run).
                assert wait_until(lambda: station.store.count_events(stream="drone") > 0, 180), edge.log[-3000:]

                def look(alert_id: str, north: float, camera_away: bool = False) -> dict:
                    target = Target(*moved(*HOME[:2], north, 20.0), alert_id=alert_id)
                    plan = station.commander.plan("copter1", target, "pia")
                    assert all(o.ok for o in station.commander.confirm("copter1", plan.id, "pia"))
                    if camera_away:  # up, above the horizon, before arrival: the picture never shows the target
                        sim.point_camera(20.0)
                    assert wait_until(lambda: station.commander.status("copter1")["flight"]["state"] == "arrived", 60)
                    return plan.as_dict()

                first = look("alert-seen", 120.0)
                assert wait_until(lambda: station.commander.status("copter1")["flight"]["seen"] is not None, 60), (
                    edge.log[-3000:]
                )
                seen = station.store.alert_confirmation("alert-seen")
                assert seen is not None and seen["state"] == "confirmed", (seen, _where(station, first))
                assert seen["node"] == "drone-node" and seen["stream"] == "drone" and seen["distance_m"] <= 15
                assert seen["time"] >= seen["look_time"]

                second = look("alert-missed", 200.0, camera_away=True)
                assert wait_until(lambda: station.commander.status("copter1")["flight"]["seen"] is not None, 60)
                missed = station.store.alert_confirmation("alert-missed")
                assert missed is not None and missed["state"] == "not_seen", (missed, _where(station, second))
            assert edge.stop() == 0
        finally:
            station.commander.stop()
            station.aggregator.stop()
            station.store.close()
            sim.stop()
    vehicle_at_first = first["standoff"]
    assert (
        distance_m(vehicle_at_first["lat"], vehicle_at_first["lon"], first["target"]["lat"], first["target"]["lon"])
        > 30
    )
    assert second["target"]["alert_id"] == "alert-missed"
