"""The station's commander against the copter simulator over TCP (as against ArduCopter SITL on 5760).

Acceptance of cross-command at the MAVLink level: take off, plan and confirm a "look at", reach the
standoff point within 10 m with the camera pointed at the target (read from the vehicle's own
messages); refusals before any MAVLink; a vehicle that goes silent shows "link lost".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ground_station.command.commander import Commander, CommandError
from ground_station.command.config import CommandConfig
from ground_station.command.planner import PlanRefused, Target, distance_m, moved
from smarteye.sim.copter import CopterSimulator
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import GeoPosition
from tests.support.factories import make_event

# Flies the simulated copter over real MAVLink links for seconds of simulated flight: whole-component, not in
# the fast subset.
pytestmark = pytest.mark.e2e

HOME = (36.3725, 127.3650, 60.0)
SPEEDUP = 10.0
ESTIMATE_S = 10.0  # simulated seconds to the vehicle's position estimate where a test only waits for it


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def flying(request: pytest.FixtureRequest) -> Iterator[tuple[CopterSimulator, Commander, list[tuple]]]:
    """A simulated copter and the commander linked to it; the position estimate comes after `request.param`
    simulated seconds (ArduCopter's ~35 s where the test sees the refusal before it, else ESTIMATE_S)."""
    port = free_tcp_port()
    estimate = getattr(request, "param", ESTIMATE_S)
    sim = CopterSimulator(
        f"tcpin:127.0.0.1:{port}", home=HOME, speedup=SPEEDUP, position_estimate_after_s=estimate
    ).start()
    audit: list[tuple] = []
    corners = ((-50, 200), (-50, 260), (50, 260), (50, 200))  # metres north, east of home
    no_fly = {"name": "school", "space": "geo", "points": [moved(*HOME[:2], n, e) for n, e in corners]}
    config = CommandConfig.model_validate({
        "vehicles": [{"name": "copter1", "url": f"tcp:127.0.0.1:{port}"}],
        "standoff_m": 40, "altitude_above_target_m": 30, "max_distance_from_home_m": 500, "no_fly": [no_fly],
        "heartbeat_timeout_s": 2.0,
    })  # fmt: skip
    commander = Commander(config, audit=lambda *entry: audit.append(entry))
    commander.start()
    try:
        _until(lambda: commander.status("copter1")["link"] == "ok", 10, "the link")
        yield sim, commander, audit
    finally:
        commander.stop()
        sim.stop()


@pytest.mark.parametrize("flying", [35.0], indirect=True)  # as long as ArduCopter SITL takes
def test_take_off_then_look_at_a_target_reaches_the_standoff_with_the_camera_on_the_target(flying) -> None:
    sim, commander, audit = flying
    early = commander.takeoff("copter1", 20, "pia")
    assert [o.result for o in early] == ["accepted", "failed"], "ArduCopter refuses to arm without a position"
    assert "Need Position Estimate" in (early[1].detail or "")
    _until(lambda: commander.status("copter1")["home"], 15, "the position estimate and home")
    outcomes = commander.takeoff("copter1", 20, "pia")
    assert [o.result for o in outcomes] == ["accepted"] * 3, outcomes
    _until(lambda: (commander.status("copter1")["position"] or {}).get("alt_m", 0) > 19.5, 15, "20 m")

    target = Target(*moved(*HOME[:2], 120.0, 50.0), alert_id="a-1")
    plan = commander.plan("copter1", target, "pia")
    assert plan.altitude_m == 30 and abs(distance_m(*plan.standoff, target.lat, target.lon) - 40) < 0.5
    steps = commander.confirm("copter1", plan.id, "pia")
    assert [(o.command, o.result) for o in steps] == [
        ("MAV_CMD_DO_REPOSITION", "accepted"), ("MAV_CMD_DO_SET_ROI_LOCATION", "accepted")
    ]  # fmt: skip
    status = commander.status("copter1")
    assert status["mode"] == "GUIDED" and status["flight"]["state"] == "flying"
    assert status["flight"]["eta_s"] is not None and status["flight"]["distance_to_standoff_m"] > 10
    _until(lambda: commander.status("copter1")["flight"]["state"] == "arrived", 30, "arrival")
    vehicle = sim.snapshot()  # what the vehicle itself knows, not what the station was told
    assert distance_m(vehicle.lat, vehicle.lon, *plan.standoff) < 10
    expected_pitch = -math.degrees(math.atan2(30, 40))  # 30 m above, 40 m away
    gimbal = _until(
        lambda: (g := commander.status("copter1")["gimbal"]) and abs(g["pitch_deg"] - expected_pitch) < 3 and g,
        10, "the gimbal on the target",
    )  # fmt: skip
    assert abs(gimbal["pitch_deg"] - expected_pitch) < 3
    assert [entry[1] for entry in audit] == ["vehicle.command"] * 7 and all(e[0] == "pia" for e in audit)
    assert commander.action("copter1", "rtl", "pia").result == "accepted"
    assert commander.status("copter1")["flight"]["state"] == "returning"


def test_a_target_beyond_the_radius_or_a_route_through_a_no_fly_zone_is_refused_before_any_mavlink(flying) -> None:
    sim, commander, _ = flying
    _until(lambda: commander.status("copter1")["home"], 15, "the position estimate")
    sent = list(sim.commands)
    with pytest.raises(PlanRefused, match="max_distance_from_home_m"):
        commander.plan("copter1", Target(*moved(*HOME[:2], 600.0, 0.0)), "pia")
    with pytest.raises(PlanRefused, match="no-fly zone 'school'"):
        commander.plan("copter1", Target(*moved(*HOME[:2], 0.0, 400.0)), "pia")
    with pytest.raises(CommandError, match="no pending plan"):
        commander.confirm("copter1", "made-up", "pia")
    with pytest.raises(CommandError, match="not flying"):
        commander.confirm("copter1", commander.plan("copter1", Target(*moved(*HOME[:2], 100.0, 0.0)), "pia").id, "p")
    assert sim.commands == sent, "nothing reached the vehicle"


def test_a_vehicle_that_goes_silent_shows_link_lost_within_the_heartbeat_timeout(flying) -> None:
    sim, commander, _ = flying
    sim.stop()
    stopped = time.monotonic()
    _until(lambda: commander.status("copter1")["link"] == "lost", 5, "link lost")
    assert time.monotonic() - stopped < 2.0 + 1.5
    outcome = commander.action("copter1", "hold", "pia")
    assert outcome.result == "link lost" and not outcome.ok


def test_detections_near_the_target_after_arrival_confirm_the_alert_and_none_means_not_seen() -> None:
    port = free_tcp_port()
    sim = CopterSimulator(
        f"tcpin:127.0.0.1:{port}", home=HOME, speedup=SPEEDUP, position_estimate_after_s=ESTIMATE_S
    ).start()
    rows: list[dict] = []
    config = CommandConfig.model_validate({
        "vehicles": [{"name": "copter1", "url": f"tcp:127.0.0.1:{port}", "stream": "drone-node/drone"}],
        "standoff_m": 30, "confirm_radius_m": 15, "confirm_window_s": 2.0,
    })  # fmt: skip
    commander = Commander(config, confirmations=rows.append)
    commander.start()
    try:
        _until(lambda: commander.status("copter1")["home"], 15, "the position estimate")
        assert all(o.ok for o in commander.takeoff("copter1", 20, "pia"))
        _until(lambda: (commander.status("copter1")["position"] or {}).get("alt_m", 0) > 19.5, 15, "20 m")

        def look(alert_id: str, north: float) -> tuple[float, float]:
            target = moved(*HOME[:2], north, 0.0)
            plan = commander.plan("copter1", Target(*target, alert_id=alert_id), "pia")
            assert all(o.ok for o in commander.confirm("copter1", plan.id, "pia"))
            _until(lambda: commander.status("copter1")["flight"]["state"] == "arrived", 30, "arrival")
            return target

        def seen_at(lat: float, lon: float, stream: str = "drone", node: str = "drone-node") -> None:
            event = make_event(stream=stream, node=node, capture_time=time.time(),
                               geo=GeoPosition(lat=lat, lon=lon, uncertainty_m=4.0, source="mavlink"))  # fmt: skip
            commander.on_message("event", node, event.model_dump_json())

        target = look("a-1", 100.0)
        seen_at(*moved(*target, 3.0, 4.0), stream="other")  # another stream: not the drone's camera
        seen_at(*moved(*target, 40.0, 0.0))  # the drone's camera, but 40 m off
        assert commander.status("copter1")["flight"]["seen"] is None
        seen_at(*moved(*target, 3.0, 4.0))
        seen = commander.status("copter1")["flight"]["seen"]
        assert seen["state"] == "confirmed" and seen["distance_m"] == pytest.approx(5.0, abs=0.2)
        assert rows[-1]["alert_id"] == "a-1" and rows[-1]["vehicle"] == "copter1" and rows[-1]["pilot"] == "pia"

        target = look("a-2", 160.0)  # the camera points away: only detections elsewhere
        seen_at(*moved(*target, 0.0, 80.0))
        _until(lambda: commander.status("copter1")["flight"]["seen"], 5, "the confirmation window to run out")
        assert rows[-1]["alert_id"] == "a-2" and rows[-1]["state"] == "not_seen" and len(rows) == 2
    finally:
        commander.stop()
        sim.stop()


class _Router:
    """A MAVLink router for the test (as mavlink-router or MAVProxy on a companion computer): what the station
    sends goes to every vehicle, what any vehicle sends goes to the station."""

    def __init__(self, vehicles: list[tuple[str, int]]) -> None:
        import socket
        import threading

        self.station_side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.station_side.bind(("127.0.0.1", 0))
        self.vehicle_side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.vehicle_side.bind(("127.0.0.1", 0))
        self.port = self.station_side.getsockname()[1]
        self.vehicles, self.station = vehicles, None
        for sock in (self.station_side, self.vehicle_side):
            sock.settimeout(0.2)
        self.running = True
        for target in (self._from_station, self._from_vehicles):
            threading.Thread(target=target, daemon=True).start()

    def _from_station(self) -> None:
        while self.running:
            try:
                data, self.station = self.station_side.recvfrom(65536)
            except OSError:
                continue
            for vehicle in self.vehicles:
                self.vehicle_side.sendto(data, vehicle)

    def _from_vehicles(self) -> None:
        while self.running:
            try:
                data, _ = self.vehicle_side.recvfrom(65536)
            except OSError:
                continue
            if self.station is not None:
                self.station_side.sendto(data, self.station)

    def close(self) -> None:
        self.running = False
        self.station_side.close()
        self.vehicle_side.close()


def test_two_vehicles_on_one_link_are_told_apart_by_system_id() -> None:
    from smarteye.sim.ports import free_udp_port

    ports = [free_udp_port(), free_udp_port()]
    sims = [CopterSimulator(f"udpin:127.0.0.1:{port}", home=HOME, system_id=i + 1, speedup=SPEEDUP,
                            position_estimate_after_s=ESTIMATE_S).start()
            for i, port in enumerate(ports)]  # fmt: skip
    router = _Router([("127.0.0.1", port) for port in ports])
    url = f"udpout:127.0.0.1:{router.port}"
    config = CommandConfig.model_validate({"vehicles": [{"name": "one", "url": url, "system_id": 1},
                                                         {"name": "two", "url": url, "system_id": 2}]})  # fmt: skip
    commander = Commander(config)
    commander.start()
    try:
        assert len(commander.connections) == 1, "one link for both"
        _until(lambda: all(commander.status(n)["home"] for n in ("one", "two")), 15, "both vehicles' position")
        assert [o.result for o in commander.takeoff("two", 15, "pia")] == ["accepted"] * 3
        _until(lambda: sims[1].snapshot().rel_alt > 14.5, 15, "vehicle 2 in the air")
        assert sims[1].snapshot().armed and not sims[0].snapshot().armed, "only the addressed vehicle moved"
        _until(lambda: commander.status("two")["mode"] == "GUIDED", 5, "vehicle 2's next heartbeat")
        assert commander.status("one")["mode"] == "STABILIZE" and not commander.status("one")["armed"]
    finally:
        commander.stop()
        router.close()
        for sim in sims:
            sim.stop()
