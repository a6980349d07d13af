"""/api/vehicles on the app the product serves, with the copter simulator on the other end of the link:
only pilots (and admins) command, a refused plan sends nothing, every command is in the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ground_station.auth.roles import Role
from ground_station.command.link import mavlink
from ground_station.command.planner import moved
from ground_station.config import GroundStationConfig
from ground_station.service import GroundStation
from smarteye.sim.copter import CopterSimulator
from smarteye.sim.ports import free_tcp_port
from tests.support.accounts import FAST_HASHER

HOME = (36.3725, 127.3650, 60.0)
PASSWORD = "vehicles-password-1"


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[GroundStation, CopterSimulator]]:
    port = free_tcp_port()
    # 10 simulated seconds to a position estimate (ArduCopter's 35 s is tested in tests/smarteye/sim): 1 s here
    sim = CopterSimulator(f"tcpin:127.0.0.1:{port}", home=HOME, speedup=10.0, position_estimate_after_s=10.0).start()
    config = GroundStationConfig.model_validate({
        "database_url": f"sqlite:///{tmp_path / 'gs.sqlite'}",
        "web": {"secure_cookies": False},
        "command": {"vehicles": [{"name": "copter1", "url": f"tcp:127.0.0.1:{port}"}],
                    "max_distance_from_home_m": 300},
    })  # fmt: skip
    built = GroundStation(config, hasher=FAST_HASHER)
    for name, role in (("pia", Role.PILOT), ("vic", Role.VIEWER), ("sue", Role.SUPERVISOR)):
        built.accounts.create_user(name, PASSWORD, role)
    built.commander.start()
    try:
        yield built, sim
    finally:
        built.commander.stop()
        built.store.close()
        sim.stop()


def _client(station: GroundStation, user: str) -> TestClient:
    client = TestClient(station.app)
    response = client.post("/api/login", json={"username": user, "password": PASSWORD})
    assert response.status_code == 200
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def _wait_vehicle(client: TestClient, condition: Callable[[dict], bool], what: str) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        vehicle = client.get("/api/vehicles/copter1").json()
        if condition(vehicle):
            return vehicle
        time.sleep(0.1)
    raise AssertionError(f"the simulated copter never showed {what}")


def _wait_position(client: TestClient) -> dict:
    return _wait_vehicle(client, lambda v: v["link"] == "ok" and v["home"], "a position")


def test_only_pilots_command_refusals_send_nothing_and_commands_are_audited(station) -> None:
    built, sim = station
    pilot, viewer, supervisor = _client(built, "pia"), _client(built, "vic"), _client(built, "sue")
    assert viewer.get("/api/vehicles").status_code == 403, "vehicle positions are for pilots and supervisors"
    vehicle = _wait_position(supervisor)
    assert vehicle["mode"] == "STABILIZE" and vehicle["armed"] is False
    near = dict(zip(("lat", "lon"), moved(*HOME[:2], 100, 0), strict=True))
    for client in (viewer, supervisor):
        assert client.post("/api/vehicles/copter1/plans", json=near).status_code == 403
        assert client.post("/api/vehicles/copter1/takeoff", json={}).status_code == 403
        assert client.post("/api/vehicles/copter1/rtl").status_code == 403

    far = dict(zip(("lat", "lon"), moved(*HOME[:2], 400, 0), strict=True))
    refused = pilot.post("/api/vehicles/copter1/plans", json=far)
    assert refused.status_code == 409 and "max_distance_from_home_m" in refused.json()["detail"]
    assert "refused before anything was sent" in refused.json()["detail"]
    asked = [c for c, _ in sim.commands if c != mavlink.MAV_CMD_REQUEST_MESSAGE]  # the station asks for HOME
    assert asked == [], "no command reached the vehicle"
    assert pilot.post("/api/vehicles/nope/plans", json=near).status_code == 404

    takeoff = pilot.post("/api/vehicles/copter1/takeoff", json={"altitude_m": 15}).json()
    assert takeoff["ok"] and [c["command"] for c in takeoff["commands"]] == [
        "MAV_CMD_DO_SET_MODE", "MAV_CMD_COMPONENT_ARM_DISARM", "MAV_CMD_NAV_TAKEOFF"
    ]  # fmt: skip
    plan = pilot.post("/api/vehicles/copter1/plans", json={**near, "alert_id": "a-7"}).json()
    assert plan["target"]["alert_id"] == "a-7" and len(plan["route"]) == 2 and plan["eta_s"] > 0
    # The pilot waits for the climb: armed (next 1 Hz heartbeat) and at 15 m (4 Hz position)
    _wait_vehicle(pilot, lambda v: v["armed"] and (v["position"] or {}).get("alt_m", 0) > 14.5, "armed at 15 m")
    confirmed = pilot.post(f"/api/vehicles/copter1/plans/{plan['id']}/confirm").json()
    assert confirmed["ok"], confirmed
    assert pilot.post(f"/api/vehicles/copter1/plans/{plan['id']}/confirm").status_code == 409, "a plan flies once"
    hold = pilot.post("/api/vehicles/copter1/hold").json()
    assert hold["commands"][0]["result"] == "accepted"
    audit = supervisor.get("/api/audit", params={"action": "vehicle.command"}).json()
    entries = audit["items"]
    assert len(entries) == 6 and {e["actor"] for e in entries} == {"pia"}
    assert all(e["target"] == "copter1" for e in entries)


def test_an_alert_shows_what_the_drone_sent_to_look_found(station) -> None:
    built, _ = station
    viewer = _client(built, "vic")
    assert viewer.get("/api/alerts/a-9/confirmation").status_code == 404
    built.commander.confirmations({
        "alert_id": "a-9", "state": "confirmed", "vehicle": "copter1", "pilot": "pia", "look_time": 1_800_000_000.0,
        "time": 1_800_000_030.0, "node": "drone-node", "stream": "drone", "event_id": "ev3", "label": "car",
        "distance_m": 4.2,
    })  # fmt: skip
    seen = viewer.get("/api/alerts/a-9/confirmation").json()
    assert seen["state"] == "confirmed" and seen["vehicle"] == "copter1" and seen["event_id"] == "ev3"
