"""The fleet's rules on messages encoded and parsed by pymavlink (real sender headers): which sender is a
vehicle, which source wins when two message types state the same thing, slow fields as they were at t."""

from __future__ import annotations

from typing import Any

import pytest
from pymavlink import mavutil

from edge.telemetry.mavlink_fleet import Fleet
from edge.telemetry.mavlink_reader import ensure_mavlink2
from edge.telemetry.vehicle import euler_deg_to_quaternion

ensure_mavlink2()  # GIMBAL_DEVICE_ATTITUDE_STATUS (id 285) exists only in the MAVLink 2 dialect

AUTOPILOT, GIMBAL, CAMERA, COMPANION, GCS = 1, 154, 100, 191, 190


class _Sender:
    """One MAVLink component: encodes like a link peer, parses back, folds into the fleet at time t."""

    def __init__(self, fleet: Fleet, sid: int, cid: int) -> None:
        self.fleet = fleet
        self.mav = mavutil.mavlink.MAVLink(None, srcSystem=sid, srcComponent=cid)

    def __getattr__(self, name: str) -> Any:
        encode = getattr(self.mav, name + "_encode")

        def send(t: float, *args: Any) -> None:
            (msg,) = mavutil.mavlink.MAVLink(None).parse_buffer(encode(*args).pack(self.mav))
            self.fleet.fold(msg, msg.get_type(), t)

        return send


def _heartbeat(sender: _Sender, t: float, mav_type: int | None = None, autopilot: int | None = None) -> None:
    ml = mavutil.mavlink
    mav_type = ml.MAV_TYPE_QUADROTOR if mav_type is None else mav_type
    autopilot = ml.MAV_AUTOPILOT_ARDUPILOTMEGA if autopilot is None else autopilot
    sender.heartbeat(t, mav_type, autopilot, 128 | 1, 5, ml.MAV_STATE_ACTIVE)


def _gpi(sender: _Sender, t: float, lat_e7: int, speed_cms: int = 0) -> None:
    sender.global_position_int(t, 0, lat_e7, 85_000_000, 500_000, 100_000, speed_cms, 0, 0, 9000)


def _gimbal_device(sender: _Sender, t: float, pitch: float) -> None:
    q = euler_deg_to_quaternion(0.0, pitch, 10.0)
    sender.gimbal_device_attitude_status(
        t, 0, 0, 0, mavutil.mavlink.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME, q, 0, 0, 0, 0
    )


def test_only_an_autopilot_moves_a_vehicle() -> None:
    ml = mavutil.mavlink
    fleet = Fleet(stale_after_s=1.0, history_s=60.0, max_samples=100)
    station = _Sender(fleet, 2, GCS)
    _heartbeat(station, 0.0, ml.MAV_TYPE_GCS, ml.MAV_AUTOPILOT_INVALID)
    _gpi(_Sender(fleet, 2, AUTOPILOT), 0.0, 470_000_000)  # a GCS system's "autopilot" data: not a vehicle
    _heartbeat(_Sender(fleet, 3, GIMBAL), 0.0, ml.MAV_TYPE_GIMBAL, ml.MAV_AUTOPILOT_INVALID)
    assert fleet.vehicles() == [] and fleet.state(None, 0.0) is None

    autopilot = _Sender(fleet, 1, AUTOPILOT)
    _gpi(autopilot, 0.1, 471_000_000)  # autopilot data before any heartbeat already makes a vehicle
    assert fleet.vehicles() == [1]
    _heartbeat(autopilot, 0.2)
    _gpi(_Sender(fleet, 1, COMPANION), 0.3, 0)  # a companion computer's own position: ignored
    _heartbeat(_Sender(fleet, 1, 2), 0.3, ml.MAV_TYPE_HEXAROTOR)  # a second autopilot component: ignored
    state = fleet.state(1, 0.4)
    assert state is not None
    assert state.lat == pytest.approx(47.1) and state.vehicle_type == "QUADROTOR"
    assert state.link_ok and state.last_heartbeat == 0.2
    assert state.time == 0.2 and fleet.last_time(1) == 0.2  # ignored senders do not keep a vehicle fresh
    assert not fleet.state(1, 1.3).link_ok  # heartbeat older than stale_after_s
    assert fleet.vehicles() == [1] and fleet.last_time(9) is None


def test_gimbal_sources_best_first_while_the_better_one_is_fresh() -> None:
    fleet = Fleet(stale_after_s=1.0, history_s=60.0, max_samples=100)
    _heartbeat(_Sender(fleet, 1, AUTOPILOT), 0.0)
    gimbal = _Sender(fleet, 1, GIMBAL)

    def source_and_pitch() -> tuple[str | None, float | None]:
        state = fleet.state(1, 0.0)
        assert state is not None
        return state.gimbal_source, state.gimbal_pitch_deg

    gimbal.mount_status(0.0, 0, 0, -4500, 0, 0)
    assert source_and_pitch() == ("MOUNT_STATUS", -45.0)
    _gimbal_device(gimbal, 0.1, -30.0)
    assert source_and_pitch() == ("GIMBAL_DEVICE_ATTITUDE_STATUS", pytest.approx(-30.0))
    gimbal.mount_status(0.2, 0, 0, -4500, 0, 0)
    gimbal.mount_orientation(0.3, 0, 0.0, -60.0, 0.0)
    assert source_and_pitch() == ("GIMBAL_DEVICE_ATTITUDE_STATUS", pytest.approx(-30.0))  # worse, while fresh
    nan = float("nan")
    gimbal.gimbal_device_attitude_status(0.5, 0, 0, 0, 0, [nan] * 4, 0, 0, 0, 0)  # attitude unknown: no refresh
    gimbal.mount_orientation(1.2, 0, 0.0, -60.0, 0.0)  # the device has been silent for > 1 s
    assert source_and_pitch() == ("MOUNT_ORIENTATION", -60.0)
    gimbal.mount_status(1.3, 0, 0, -4500, 0, 0)
    assert source_and_pitch() == ("MOUNT_ORIENTATION", -60.0)
    # The gimbal history holds what was taken; across a change of yaw frame the angles are not blended
    # but taken from the nearer sample (0.1 s earth-frame, 1.2 s vehicle-frame).
    before, after = fleet.state_at(1, 0.6), fleet.state_at(1, 0.7)
    assert before is not None and after is not None
    assert (before.gimbal_pitch_deg, before.gimbal_yaw_frame) == (pytest.approx(-30.0), "earth")
    assert (after.gimbal_pitch_deg, after.gimbal_yaw_frame) == (-60.0, "vehicle")


def test_vfr_hud_speeds_only_until_global_position_int_is_heard() -> None:
    fleet = Fleet(stale_after_s=1.0, history_s=60.0, max_samples=100)
    autopilot = _Sender(fleet, 1, AUTOPILOT)
    autopilot.vfr_hud(0.0, 12.0, 11.5, 45, 40, 100.0, -1.0)
    state = fleet.state(1, 0.0)
    assert state is not None and (state.groundspeed_mps, state.heading_deg) == (11.5, 45.0)
    _gpi(autopilot, 0.1, 470_000_000, speed_cms=500)
    autopilot.vfr_hud(0.2, 12.0, 20.0, 180, 40, 100.0, -1.0)
    state = fleet.state(1, 0.2)
    assert state is not None and (state.groundspeed_mps, state.heading_deg) == (5.0, 90.0)


def test_video_stream_fov_only_until_the_camera_gives_its_optics() -> None:
    fleet = Fleet(stale_after_s=1.0, history_s=60.0, max_samples=100)
    _heartbeat(_Sender(fleet, 1, AUTOPILOT), 0.0)
    camera = _Sender(fleet, 1, CAMERA)
    name = b"cam".ljust(32, b"\0")

    def fov_and_size() -> tuple[float | None, int | None]:
        state = fleet.state(1, 0.0)
        assert state is not None
        return state.camera_hfov_deg, state.camera_resolution_h

    camera.video_stream_status(0.1, 1, 0, 30.0, 1920, 1080, 4000, 0, 82)
    assert fov_and_size() == (82.0, 1920)
    camera.camera_information(0.2, 0, name, name, 0, 0.0, 0.0, 0.0, 4000, 3000, 0, 0, 0, b"")  # no optics
    assert fov_and_size() == (82.0, 4000)
    camera.video_stream_status(0.3, 1, 0, 30.0, 1280, 720, 4000, 0, 90)
    assert fov_and_size() == (90.0, 1280)
    camera.camera_information(0.4, 0, name, name, 0, 4.5, 6.17, 4.55, 4000, 3000, 0, 0, 0, b"")
    camera.video_stream_information(0.5, 1, 1, 0, 0, 30.0, 1280, 720, 4000, 0, 90, b"", b"")
    assert fov_and_size() == (pytest.approx(68.8656065), 4000)


def test_slow_fields_at_t_are_the_snapshot_of_that_time() -> None:
    fleet = Fleet(stale_after_s=1.0, history_s=60.0, max_samples=100)
    autopilot = _Sender(fleet, 1, AUTOPILOT)
    for i, voltage_mv in enumerate((12_600, 12_500, 12_400, 11_000)):
        t = i * 0.6
        autopilot.sys_status(t, 0, 0, 0, 0, voltage_mv, -1, 80 - i, 0, 0, 0, 0, 0, 0)
        _heartbeat(autopilot, t)  # same instant: within SNAPSHOT_EVERY_S, no second snapshot
    assert fleet.state_at(1, 0.1).battery_voltage_v == pytest.approx(12.6)  # type: ignore[union-attr]
    assert fleet.state_at(1, 1.3).battery_voltage_v == pytest.approx(12.4)  # type: ignore[union-attr]
    latest = fleet.state(1, 1.8)
    assert latest is not None and latest.battery_voltage_v == pytest.approx(11.0)
    assert latest.battery_remaining_pct == 77.0
    assert fleet.state_at(1, 1.8 + 1.1) is None and fleet.state_at(1, -1.1) is None  # beyond stale_after_s


def test_a_decoder_error_reaches_the_caller_and_leaves_the_vehicle_as_it_was() -> None:
    fleet = Fleet(stale_after_s=1.0, history_s=60.0, max_samples=100)
    _heartbeat(_Sender(fleet, 1, AUTOPILOT), 0.0)
    gimbal = _Sender(fleet, 1, GIMBAL)
    _gimbal_device(gimbal, 0.1, -30.0)
    with pytest.raises(ValueError, match="no rotation"):
        gimbal.gimbal_device_attitude_status(0.2, 0, 0, 0, 0, [0.0] * 4, 0, 0, 0, 0)
    state = fleet.state(1, 0.2)
    assert state is not None and state.gimbal_pitch_deg == pytest.approx(-30.0) and state.time == 0.1
