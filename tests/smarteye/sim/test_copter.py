"""The copter simulator against a pymavlink ground station over TCP, as a GCS talks to ArduCopter SITL.

The figures it must match are those a real ArduCopter 4.7-dev SITL showed (see smarteye/sim/copter.py):
no position and no arming before the estimate, a reposition within ~2 m, the gimbal at the commanded
attitude, a mission flown item by item. The simulated clock runs 10× faster than the wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymavlink import mavutil

from edge.telemetry.vehicle import quaternion_to_euler_deg
from smarteye.sim.copter import CopterSimulator, Mode, moved, offset_m
from smarteye.sim.ports import free_tcp_port

# Flies the simulated copter over real MAVLink links for seconds of simulated flight: whole-component, not in
# the fast subset.
pytestmark = pytest.mark.e2e

mavlink = mavutil.mavlink
SPEEDUP = 10.0
HOME = (36.3725, 127.3650, 60.0)
ESTIMATE_S = 10.0  # simulated seconds to a position estimate where a test only waits for it


class Gcs:
    """A minimal ground station: sends commands and waits for what the vehicle answers."""

    def __init__(self, url: str) -> None:
        self.link = mavutil.mavlink_connection(url, source_system=255, source_component=190)
        self.seen: list[Any] = []

    def wait(self, kind: str, condition: Callable[[Any], bool] = lambda m: True, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.link.recv_match(blocking=True, timeout=0.2)
            if message is None:
                continue
            self.seen.append(message)
            if message.get_type() == kind and condition(message):
                return message
        raise AssertionError(f"no {kind} within {timeout} s")

    def command(self, command: int, *params: float, as_int: bool = False, x: int = 0, y: int = 0, z: float = 0) -> int:
        if as_int:
            p = [*params, 0, 0, 0, 0][:4]
            self.link.mav.command_int_send(1, 1, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command, 0, 0, *p, x, y, z)
        else:
            p = [*params, 0, 0, 0, 0, 0, 0, 0][:7]
            self.link.mav.command_long_send(1, 1, command, 0, *p)
        return self.wait("COMMAND_ACK", lambda m: m.command == command).result

    def position(self) -> tuple[float, float, float]:
        m = self.wait("GLOBAL_POSITION_INT", timeout=3)
        return m.lat / 1e7, m.lon / 1e7, m.relative_alt / 1000

    def fly_until(self, condition: Callable[[tuple[float, float, float]], bool], timeout: float = 15.0) -> tuple:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            where = self.position()
            if condition(where):
                return where
        raise AssertionError(f"the vehicle did not get there in {timeout} s (at {where})")


@pytest.fixture
def copter(request: pytest.FixtureRequest) -> Iterator[tuple[CopterSimulator, Gcs]]:
    """The simulator with a GCS connected; the position estimate comes after `request.param` simulated seconds
    (ArduCopter's ~35 s where a test checks the wait itself, ESTIMATE_S where it only waits)."""
    port = free_tcp_port()
    estimate = getattr(request, "param", ESTIMATE_S)
    sim = CopterSimulator(
        f"tcpin:127.0.0.1:{port}", home=HOME, speedup=SPEEDUP, position_estimate_after_s=estimate
    ).start()
    gcs = Gcs(f"tcp:127.0.0.1:{port}")
    try:
        gcs.wait("HEARTBEAT", lambda m: m.get_srcComponent() == 1)
        yield sim, gcs
    finally:
        gcs.link.close()
        sim.stop()


def _airborne(sim: CopterSimulator, gcs: Gcs, alt: float = 20.0) -> None:
    gcs.wait("GLOBAL_POSITION_INT", lambda m: m.lat != 0, timeout=10)
    assert gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, Mode.GUIDED) == mavlink.MAV_RESULT_ACCEPTED
    assert gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mavlink.MAV_RESULT_ACCEPTED
    assert gcs.command(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, alt) == mavlink.MAV_RESULT_ACCEPTED
    gcs.fly_until(lambda p: abs(p[2] - alt) < 0.5)


@pytest.mark.parametrize("copter", [35.0], indirect=True)  # as long as ArduCopter SITL takes
def test_no_position_and_no_arming_before_the_estimate_then_guided_take_off(copter) -> None:
    sim, gcs = copter
    first = gcs.wait("GLOBAL_POSITION_INT")
    assert (first.lat, first.lon) == (0, 0), "ArduCopter reads 0/0 until the EKF has a position"
    heartbeat = gcs.wait("HEARTBEAT", lambda m: m.get_srcComponent() == 1)
    assert heartbeat.autopilot == mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA and heartbeat.type == mavlink.MAV_TYPE_QUADROTOR
    assert gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, Mode.GUIDED) == mavlink.MAV_RESULT_ACCEPTED
    assert gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mavlink.MAV_RESULT_FAILED
    gcs.wait("STATUSTEXT", lambda m: "Need Position Estimate" in m.text)
    _airborne(sim, gcs)
    heartbeat = gcs.wait("HEARTBEAT", lambda m: m.get_srcComponent() == 1)
    assert heartbeat.custom_mode == Mode.GUIDED and heartbeat.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    assert gcs.wait("EXTENDED_SYS_STATE").landed_state == mavlink.MAV_LANDED_STATE_IN_AIR


def test_reposition_as_command_int_and_position_targets_reach_their_points(copter) -> None:
    sim, gcs = copter
    _airborne(sim, gcs)
    lat, lon, _ = gcs.position()
    target = moved(lat, lon, 30.0, 40.0)  # 50 m away
    flags = mavlink.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE
    assert gcs.command(mavlink.MAV_CMD_DO_REPOSITION, -1, flags) == mavlink.MAV_RESULT_DENIED, "floats: refused"
    result = gcs.command(
        mavlink.MAV_CMD_DO_REPOSITION, -1, flags, as_int=True, x=int(target[0] * 1e7), y=int(target[1] * 1e7), z=25
    )
    assert result == mavlink.MAV_RESULT_ACCEPTED
    at = gcs.fly_until(lambda p: math.hypot(*offset_m(p[0], p[1], *target)) < 1.9 and abs(p[2] - 25) < 0.5)
    assert math.hypot(*offset_m(at[0], at[1], *target)) < 1.9
    far = moved(*target, -100.0, 0.0)
    gcs.link.mav.set_position_target_global_int_send(
        0, 1, 1, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, 0b110111111000, int(far[0] * 1e7), int(far[1] * 1e7),
        25, 0, 0, 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    gcs.fly_until(lambda p: math.hypot(*offset_m(p[0], p[1], *far)) < 1.4, timeout=20)
    assert gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, Mode.LOITER) == mavlink.MAV_RESULT_ACCEPTED
    no_flag = gcs.command(
        mavlink.MAV_CMD_DO_REPOSITION, -1, 0, as_int=True, x=int(target[0] * 1e7), y=int(target[1] * 1e7)
    )
    assert no_flag == mavlink.MAV_RESULT_DENIED, "outside GUIDED without the change-mode flag"
    assert gcs.command(31999) == mavlink.MAV_RESULT_UNSUPPORTED


def test_gimbal_manager_points_where_commanded_and_at_a_region_of_interest(copter) -> None:
    sim, gcs = copter
    gcs.link.mav.command_long_send(
        1, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, mavlink.MAVLINK_MSG_ID_GIMBAL_MANAGER_INFORMATION, 0, 0, 0, 0, 0, 0
    )
    info = gcs.wait("GIMBAL_MANAGER_INFORMATION")
    assert round(math.degrees(info.pitch_min)) == -90 and round(math.degrees(info.pitch_max)) == 45
    assert gcs.command(mavlink.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW, -30, 20) == mavlink.MAV_RESULT_ACCEPTED

    def attitude(m: Any) -> tuple[float, float]:
        _, pitch, yaw = quaternion_to_euler_deg(m.q)
        return pitch, yaw

    status = gcs.wait(
        "GIMBAL_DEVICE_ATTITUDE_STATUS",
        lambda m: m.get_srcComponent() == 154 and abs(attitude(m)[0] + 30) < 1.5 and abs(attitude(m)[1] - 20) < 1.5,
    )
    assert status.get_srcComponent() == mavlink.MAV_COMP_ID_GIMBAL
    assert gcs.command(mavlink.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW, -120, 0) == mavlink.MAV_RESULT_DENIED
    _airborne(sim, gcs, alt=30.0)
    lat, lon, _ = gcs.position()
    roi = moved(lat, lon, 30.0, 0.0)  # 30 m north, on the ground (home altitude): 45° down, straight ahead
    assert (
        gcs.command(mavlink.MAV_CMD_DO_SET_ROI_LOCATION, 0, 0, 0, 0, roi[0], roi[1], 0) == mavlink.MAV_RESULT_ACCEPTED
    )
    gcs.wait("GIMBAL_DEVICE_ATTITUDE_STATUS", lambda m: abs(attitude(m)[0] + 45) < 2 and abs(attitude(m)[1]) < 2)
    for message_id in (mavlink.MAVLINK_MSG_ID_CAMERA_INFORMATION, mavlink.MAVLINK_MSG_ID_CAMERA_FOV_STATUS):
        gcs.link.mav.command_long_send(1, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, message_id, 0, 0, 0, 0, 0, 0)
    camera = gcs.wait("CAMERA_INFORMATION")
    assert bytes(camera.vendor_name).strip(b"\0") == b"" and camera.resolution_h == 1920
    fov = gcs.wait("CAMERA_FOV_STATUS")
    image = fov.lat_image / 1e7, fov.lon_image / 1e7
    assert math.hypot(*offset_m(*image, *roi)) < 3.0, "the image centre is where the camera was pointed"


def test_a_four_item_mission_uploads_and_is_flown_in_auto(copter) -> None:
    _, gcs = copter
    gcs.wait("GLOBAL_POSITION_INT", lambda m: m.lat != 0, timeout=10)
    a, b = moved(*HOME[:2], 40.0, 0.0), moved(*HOME[:2], 40.0, 40.0)
    items = [
        (mavlink.MAV_CMD_NAV_WAYPOINT, *HOME[:2], 0.0),  # home, as ArduPilot's item 0
        (mavlink.MAV_CMD_NAV_TAKEOFF, 0.0, 0.0, 15.0),
        (mavlink.MAV_CMD_NAV_WAYPOINT, *a, 15.0),
        (mavlink.MAV_CMD_NAV_WAYPOINT, *b, 15.0),
    ]
    gcs.link.mav.mission_count_send(1, 1, len(items))
    for _ in items:
        request = gcs.wait("MISSION_REQUEST_INT")
        command, lat, lon, alt = items[request.seq]
        gcs.link.mav.mission_item_int_send(
            1, 1, request.seq, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command, 0, 1, 0, 0, 0, 0,
            int(lat * 1e7), int(lon * 1e7), alt,
        )  # fmt: skip
    assert gcs.wait("MISSION_ACK").type == mavlink.MAV_MISSION_ACCEPTED
    assert gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, Mode.GUIDED) == mavlink.MAV_RESULT_ACCEPTED
    assert gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mavlink.MAV_RESULT_ACCEPTED
    assert gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, Mode.AUTO) == mavlink.MAV_RESULT_ACCEPTED
    reached = [gcs.wait("MISSION_ITEM_REACHED", timeout=20).seq for _ in range(3)]
    assert reached == [1, 2, 3]
    lat, lon, alt = gcs.position()
    assert math.hypot(*offset_m(lat, lon, *b)) < 2.0 and abs(alt - 15) < 1.0
    gcs.link.mav.mission_request_list_send(1, 1)
    assert gcs.wait("MISSION_COUNT").count == 4
