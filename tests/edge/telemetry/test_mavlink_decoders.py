"""Each MAVLink decoder on messages built with pymavlink's own message classes: units, wrap-around and the
"unknown" sentinels, plus one gimbal attitude that went through pymavlink's encoder and parser."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pymavlink import mavutil

from edge.telemetry.mavlink_decoders import (
    DECODERS,
    decode,
    decode_attitude,
    decode_camera_information,
    decode_gimbal_device_attitude_status,
    decode_global_position_int,
    decode_gps_raw_int,
    decode_heartbeat,
    decode_mount_orientation,
    decode_mount_status,
    decode_sys_status,
    decode_vfr_hud,
    decode_video_stream,
)
from edge.telemetry.mavlink_reader import ensure_mavlink2
from edge.telemetry.vehicle import euler_deg_to_quaternion
from smarteye.wire.telemetry import VehicleState

ensure_mavlink2()  # GIMBAL_DEVICE_ATTITUDE_STATUS (id 285) exists only in the MAVLink 2 dialect


def _ml() -> Any:
    return mavutil.mavlink  # looked up per use: ensure_mavlink2 swaps the dialect module


def _gimbal_status(flags: int, q: tuple[float, float, float, float]) -> object:
    return _ml().MAVLink_gimbal_device_attitude_status_message(0, 0, 1000, flags, q, 0.0, 0.0, 0.0, 0)


def _camera(focal: float, sensor_h: float, sensor_v: float, res_h: int, res_v: int) -> object:
    name = b"SmartEye".ljust(32, b"\0")
    return _ml().MAVLink_camera_information_message(
        1000, name, name, 0, focal, sensor_h, sensor_v, res_h, res_v, 0, 0, 0, b""
    )


def test_heartbeat_names_mode_type_and_autopilot() -> None:
    ml = _ml()
    msg = ml.MAVLink_heartbeat_message(ml.MAV_TYPE_QUADROTOR, ml.MAV_AUTOPILOT_ARDUPILOTMEGA, 128 | 1, 5, 4, 3)
    assert decode_heartbeat(msg) == {
        "flight_mode": "LOITER",
        "armed": True,
        "vehicle_type": "QUADROTOR",
        "autopilot": "ARDUPILOTMEGA",
    }
    disarmed = ml.MAVLink_heartbeat_message(ml.MAV_TYPE_FIXED_WING, ml.MAV_AUTOPILOT_PX4, 1, 0, 3, 3)
    fields = decode_heartbeat(disarmed)
    assert (fields["armed"], fields["vehicle_type"], fields["autopilot"]) == (False, "FIXED_WING", "PX4")
    unknown = ml.MAVLink_heartbeat_message(250, 99, 0, 0, 0, 3)  # ids no enum names: the number, not an error
    assert (decode_heartbeat(unknown)["vehicle_type"], decode_heartbeat(unknown)["autopilot"]) == ("250", "99")


def test_global_position_int_units_and_unknown_heading() -> None:
    ml = _ml()
    msg = ml.MAVLink_global_position_int_message(
        1000, 473_977_419, 85_455_938, 488_123, 100_250, 300, -400, -50, 35_999
    )
    fields = decode_global_position_int(msg)
    assert fields == pytest.approx(
        {
            "lat": 47.3977419,
            "lon": 8.5455938,
            "alt_amsl_m": 488.123,
            "alt_rel_m": 100.25,
            "groundspeed_mps": 5.0,  # |(3, -4)| m/s
            "climb_mps": 0.5,  # vz is positive down
            "heading_deg": 359.99,
        }
    )
    no_heading = ml.MAVLink_global_position_int_message(1000, 473_977_419, 85_455_938, 0, 0, 0, 0, 0, 65535)
    assert "heading_deg" not in decode_global_position_int(no_heading)  # unknown: the previous heading stands


def test_global_position_int_zero_zero_is_no_position() -> None:
    msg = _ml().MAVLink_global_position_int_message(1000, 0, 0, 0, 12_000, 0, 0, 0, 9000)
    fields = decode_global_position_int(msg)
    assert fields["lat"] is None and fields["lon"] is None and fields["alt_amsl_m"] is None
    assert fields["alt_rel_m"] == pytest.approx(12.0) and fields["heading_deg"] == pytest.approx(90.0)


def test_attitude_radians_to_wrapped_degrees() -> None:
    msg = _ml().MAVLink_attitude_message(1000, 0.5, -0.25, 3.5, 0.0, 0.0, 0.0)
    fields = decode_attitude(msg)
    assert fields["roll_deg"] == pytest.approx(28.6478898)
    assert fields["pitch_deg"] == pytest.approx(-14.3239449)
    assert fields["yaw_deg"] == pytest.approx(200.5352283 - 360.0)  # [-180, 180)


def test_vfr_hud_speeds_and_heading() -> None:
    msg = _ml().MAVLink_vfr_hud_message(12.0, 11.5, 360, 40, 100.0, -1.25)
    assert decode_vfr_hud(msg) == {"groundspeed_mps": 11.5, "climb_mps": -1.25, "heading_deg": 0.0}


def test_gps_raw_int_fix_satellites_and_accuracy() -> None:
    ml = _ml()
    msg = ml.MAVLink_gps_raw_int_message(0, 3, 0, 0, 0, 0, 0, 0, 0, 14, 0, 1500, 2250)
    assert decode_gps_raw_int(msg) == {"gps_fix_type": 3, "satellites": 14, "h_acc_m": 1.5, "v_acc_m": 2.25}
    unknown = ml.MAVLink_gps_raw_int_message(0, 0, 0, 0, 0, 0, 0, 0, 0, 255)  # no MAVLink 2 extensions
    assert decode_gps_raw_int(unknown) == {"gps_fix_type": 0, "satellites": None, "h_acc_m": None, "v_acc_m": None}


@pytest.mark.parametrize(
    ("voltage_mv", "remaining", "expected"),
    [
        (12_600, 87, {"battery_voltage_v": 12.6, "battery_remaining_pct": 87.0}),
        (0, -1, {"battery_voltage_v": None, "battery_remaining_pct": None}),
        (65535, 0, {"battery_voltage_v": None, "battery_remaining_pct": 0.0}),
    ],
)
def test_sys_status_battery_and_its_unknowns(voltage_mv: int, remaining: int, expected: dict[str, object]) -> None:
    msg = _ml().MAVLink_sys_status_message(0, 0, 0, 0, voltage_mv, -1, remaining, 0, 0, 0, 0, 0, 0)
    assert decode_sys_status(msg) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("flag", "frame"),
    [
        ("GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME", "earth"),
        ("GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME", "vehicle"),
        ("GIMBAL_DEVICE_FLAGS_YAW_LOCK", "earth"),  # older gimbals: a locked yaw is relative to north
        (None, "vehicle"),
    ],
)
def test_gimbal_device_attitude_status_quaternion_and_yaw_frame(flag: str | None, frame: str) -> None:
    flags = getattr(_ml(), flag) if flag else 0
    fields = decode_gimbal_device_attitude_status(_gimbal_status(flags, euler_deg_to_quaternion(2.0, -35.0, 140.0)))
    assert fields is not None
    assert fields == pytest.approx(
        {
            "gimbal_roll_deg": 2.0,
            "gimbal_pitch_deg": -35.0,
            "gimbal_yaw_deg": 140.0,
            "gimbal_yaw_frame": frame,
            "gimbal_source": "GIMBAL_DEVICE_ATTITUDE_STATUS",
        }
    )


def test_gimbal_device_attitude_status_through_the_wire() -> None:
    """As a link delivers it: packed by pymavlink's encoder, parsed back (float32 quaternion, q as a list)."""
    ml = _ml()
    mav = ml.MAVLink(None, srcSystem=1, srcComponent=ml.MAV_COMP_ID_GIMBAL)
    sent = mav.gimbal_device_attitude_status_encode(
        1, 1, 1000, ml.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME, euler_deg_to_quaternion(-1.0, -80.0, -120.0), 0, 0, 0, 0
    )
    (received,) = ml.MAVLink(None).parse_buffer(sent.pack(mav))
    assert received.get_type() == "GIMBAL_DEVICE_ATTITUDE_STATUS"
    fields = decode(received)
    assert fields is not None and fields["gimbal_yaw_frame"] == "earth"
    assert (fields["gimbal_roll_deg"], fields["gimbal_pitch_deg"], fields["gimbal_yaw_deg"]) == pytest.approx(
        (-1.0, -80.0, -120.0), abs=1e-3
    )


def test_gimbal_device_attitude_status_without_an_attitude() -> None:
    nan = float("nan")
    assert decode_gimbal_device_attitude_status(_gimbal_status(0, (nan, nan, nan, nan))) is None  # "I don't know"
    with pytest.raises(ValueError, match="has no rotation"):  # all zeros is malformed: the reader counts an error
        decode_gimbal_device_attitude_status(_gimbal_status(0, (0.0, 0.0, 0.0, 0.0)))


def test_mount_orientation_degrees_in_the_vehicle_frame() -> None:
    fields = decode_mount_orientation(_ml().MAVLink_mount_orientation_message(1000, 1.5, -30.0, 270.0))
    assert fields == {
        "gimbal_roll_deg": 1.5,
        "gimbal_pitch_deg": -30.0,
        "gimbal_yaw_deg": -90.0,
        "gimbal_yaw_frame": "vehicle",
        "gimbal_source": "MOUNT_ORIENTATION",
    }


def test_mount_status_centidegrees_pitch_roll_yaw_order() -> None:
    fields = decode_mount_status(_ml().MAVLink_mount_status_message(1, 154, -4500, 100, 18000))
    assert fields == pytest.approx(
        {
            "gimbal_roll_deg": 1.0,  # pointing_b
            "gimbal_pitch_deg": -45.0,  # pointing_a
            "gimbal_yaw_deg": -180.0,  # pointing_c, 180 wraps to -180
            "gimbal_yaw_frame": "vehicle",
            "gimbal_source": "MOUNT_STATUS",
        }
    )


def test_camera_information_field_of_view_from_the_optics() -> None:
    fields = decode_camera_information(_camera(4.5, 6.17, 4.55, 4000, 3000))
    assert fields == pytest.approx(
        {
            "camera_hfov_deg": 68.8656065,  # 2·atan(6.17 / (2·4.5))
            "camera_vfov_deg": 53.6382675,
            "camera_resolution_h": 4000,
            "camera_resolution_v": 3000,
        }
    )
    assert decode_camera_information(_camera(0.0, 0.0, 0.0, 0, 0)) == {}  # optics and size unknown: nothing


def test_video_stream_information_and_status_share_one_decoder() -> None:
    ml = _ml()
    info = ml.MAVLink_video_stream_information_message(1, 1, 0, 0, 30.0, 1920, 1080, 4000, 0, 82, b"cam", b"rtsp://x")
    status = ml.MAVLink_video_stream_status_message(1, 0, 30.0, 1920, 1080, 4000, 0, 82)
    expected = {"camera_hfov_deg": 82.0, "camera_resolution_h": 1920, "camera_resolution_v": 1080}
    assert decode_video_stream(info) == decode_video_stream(status) == expected
    assert DECODERS["VIDEO_STREAM_INFORMATION"] is DECODERS["VIDEO_STREAM_STATUS"]
    assert DECODERS["VIDEO_STREAM_STATUS"].__wrapped__ is decode_video_stream  # type: ignore[attr-defined]
    unknown = ml.MAVLink_video_stream_status_message(1, 0, 30.0, 0, 0, 4000, 0, 360)
    assert decode_video_stream(unknown) == {}  # 360° and 0×0 are "unknown"


def test_every_decoder_states_only_vehicle_state_fields() -> None:
    """The table's decoders, each on a typical message: their fields are VehicleState's, so a typo cannot
    silently add a field the wire model would reject."""
    ml = _ml()
    samples = [
        ml.MAVLink_heartbeat_message(ml.MAV_TYPE_QUADROTOR, ml.MAV_AUTOPILOT_PX4, 0, 0, 0, 3),
        ml.MAVLink_global_position_int_message(0, 1, 1, 0, 0, 0, 0, 0, 0),
        ml.MAVLink_attitude_message(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        ml.MAVLink_vfr_hud_message(0.0, 0.0, 0, 0, 0.0, 0.0),
        ml.MAVLink_gps_raw_int_message(0, 3, 0, 0, 0, 0, 0, 0, 0, 10, 0, 1, 1),
        ml.MAVLink_sys_status_message(0, 0, 0, 0, 12000, 0, 50, 0, 0, 0, 0, 0, 0),
        _gimbal_status(0, (1.0, 0.0, 0.0, 0.0)),
        ml.MAVLink_mount_orientation_message(0, 0.0, 0.0, 0.0),
        ml.MAVLink_mount_status_message(0, 0, 0, 0, 0),
        _camera(4.5, 6.17, 4.55, 4000, 3000),
        ml.MAVLink_video_stream_information_message(1, 1, 0, 0, 30.0, 1920, 1080, 1, 0, 82, b"", b""),
        ml.MAVLink_video_stream_status_message(1, 0, 30.0, 1920, 1080, 1, 0, 82),
    ]
    assert sorted(m.get_type() for m in samples) == sorted(DECODERS)
    for msg in samples:
        fields = decode(msg)
        assert fields, msg.get_type()
        assert set(fields) <= set(VehicleState.model_fields), (
            msg.get_type(),
            set(fields) - set(VehicleState.model_fields),
        )
        assert all(v is None or isinstance(v, int | float | str) for v in fields.values())
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in fields.values())


def test_decode_refuses_a_type_it_has_no_decoder_for() -> None:
    with pytest.raises(KeyError, match="no decoder for MAVLink message type SCALED_PRESSURE"):
        decode(_ml().MAVLink_scaled_pressure_message(0, 1013.0, 0.0, 2000))


def test_non_finite_floats_are_unknown_not_state() -> None:
    """A NaN or infinite float (forged bytes with a valid CRC decode to anything) never becomes state."""
    ml = _ml()
    attitude = ml.MAVLink_attitude_message(1000, float("nan"), float("inf"), 0.5, 0.0, 0.0, 0.0)
    assert DECODERS["ATTITUDE"](attitude) == {"yaw_deg": pytest.approx(math.degrees(0.5))}
    hud = ml.MAVLink_vfr_hud_message(float("-inf"), float("nan"), 90, 50, 1.5, float("inf"))
    assert DECODERS["VFR_HUD"](hud) == {"heading_deg": 90.0}
