"""One decoder per MAVLink message type: a pymavlink message in, the `VehicleState` fields it states out.

Decoders are pure: units are converted (1e-7 deg, mm, cm/s, centidegrees, rad → deg, m, m/s) and
"unknown" sentinels (0/0 position, UINT16_MAX, 255 satellites, NaN quaternion) become None or are left
out, so a field the message does not know keeps its previous value. Which sender may set a vehicle's
state, which source wins, and the time history are the business of `mavlink_fleet`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from pymavlink import mavutil

from edge.telemetry.vehicle import fov_deg, quaternion_to_euler_deg, wrap180, wrap360

Fields = dict[str, Any]  # VehicleState field name -> value
Decoder = Callable[[Any], Fields | None]  # None: the message says nothing usable (e.g. NaN attitude)

UINT16_MAX = 65535


def enum_name(enum: str, value: int, prefix: str) -> str:
    """The MAVLink enum entry's name without its prefix (MAV_TYPE_QUADROTOR → QUADROTOR); the number if unknown."""
    entry = mavutil.mavlink.enums.get(enum, {}).get(value)
    return entry.name.removeprefix(prefix) if entry is not None else str(value)


def decode_heartbeat(msg: Any) -> Fields:
    return {
        "flight_mode": mavutil.mode_string_v10(msg),
        "armed": bool(msg.base_mode & mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED),
        "vehicle_type": enum_name("MAV_TYPE", msg.type, "MAV_TYPE_"),
        "autopilot": enum_name("MAV_AUTOPILOT", msg.autopilot, "MAV_AUTOPILOT_"),
    }


def decode_global_position_int(msg: Any) -> Fields:
    has_fix = msg.lat != 0 or msg.lon != 0  # ArduPilot sends 0/0 while it has no position
    fields: Fields = {
        "lat": msg.lat * 1e-7 if has_fix else None,
        "lon": msg.lon * 1e-7 if has_fix else None,
        "alt_amsl_m": msg.alt * 1e-3 if has_fix else None,
        "alt_rel_m": msg.relative_alt * 1e-3,
        "groundspeed_mps": math.hypot(msg.vx, msg.vy) * 0.01,
        "climb_mps": -msg.vz * 0.01,
    }
    if msg.hdg != UINT16_MAX:  # unknown heading: the previous one stands
        fields["heading_deg"] = wrap360(msg.hdg * 0.01)
    return fields


def decode_attitude(msg: Any) -> Fields:
    return {
        "roll_deg": wrap180(math.degrees(msg.roll)),
        "pitch_deg": wrap180(math.degrees(msg.pitch)),
        "yaw_deg": wrap180(math.degrees(msg.yaw)),
    }


def decode_vfr_hud(msg: Any) -> Fields:
    return {
        "groundspeed_mps": float(msg.groundspeed),
        "climb_mps": float(msg.climb),
        "heading_deg": wrap360(float(msg.heading)),
    }


def decode_gps_raw_int(msg: Any) -> Fields:
    h_acc, v_acc = getattr(msg, "h_acc", 0), getattr(msg, "v_acc", 0)  # MAVLink 2 extensions; 0 = unknown
    return {
        "gps_fix_type": int(msg.fix_type),
        "satellites": None if msg.satellites_visible == 255 else int(msg.satellites_visible),
        "h_acc_m": h_acc * 1e-3 if h_acc else None,
        "v_acc_m": v_acc * 1e-3 if v_acc else None,
    }


def decode_sys_status(msg: Any) -> Fields:
    voltage_known = msg.voltage_battery not in (0, UINT16_MAX)
    return {
        "battery_voltage_v": msg.voltage_battery * 1e-3 if voltage_known else None,
        "battery_remaining_pct": float(msg.battery_remaining) if msg.battery_remaining >= 0 else None,
    }


def _gimbal(source: str, roll: float, pitch: float, yaw: float, frame: str) -> Fields:
    return {
        "gimbal_roll_deg": wrap180(roll),
        "gimbal_pitch_deg": wrap180(pitch),
        "gimbal_yaw_deg": wrap180(yaw),
        "gimbal_yaw_frame": frame,
        "gimbal_source": source,
    }


def decode_gimbal_device_attitude_status(msg: Any) -> Fields | None:
    if not all(math.isfinite(c) for c in msg.q):
        return None  # NaN quaternion: the gimbal does not know its attitude
    flags = msg.flags
    ml = mavutil.mavlink
    if flags & ml.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME:
        frame = "earth"
    elif flags & ml.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME:
        frame = "vehicle"
    else:  # older gimbals: yaw lock means the yaw is relative to north
        frame = "earth" if flags & ml.GIMBAL_DEVICE_FLAGS_YAW_LOCK else "vehicle"
    return _gimbal("GIMBAL_DEVICE_ATTITUDE_STATUS", *quaternion_to_euler_deg(msg.q), frame)


def decode_mount_orientation(msg: Any) -> Fields:
    return _gimbal("MOUNT_ORIENTATION", msg.roll, msg.pitch, msg.yaw, "vehicle")


def decode_mount_status(msg: Any) -> Fields:
    # pointing_a = pitch, pointing_b = roll, pointing_c = yaw, all centidegrees.
    return _gimbal("MOUNT_STATUS", msg.pointing_b * 0.01, msg.pointing_a * 0.01, msg.pointing_c * 0.01, "vehicle")


def _resolution(msg: Any) -> Fields:
    if msg.resolution_h > 0 and msg.resolution_v > 0:
        return {"camera_resolution_h": int(msg.resolution_h), "camera_resolution_v": int(msg.resolution_v)}
    return {}


def decode_camera_information(msg: Any) -> Fields:
    fields = _resolution(msg)
    hfov, vfov = fov_deg(msg.sensor_size_h, msg.focal_length), fov_deg(msg.sensor_size_v, msg.focal_length)
    if hfov is not None:  # optics unknown (0): no FOV, not a wrong one
        fields["camera_hfov_deg"], fields["camera_vfov_deg"] = hfov, vfov
    return fields


def decode_video_stream(msg: Any) -> Fields:
    """VIDEO_STREAM_INFORMATION and VIDEO_STREAM_STATUS carry the same horizontal FOV and resolution."""
    fields = _resolution(msg)
    if 0 < msg.hfov < 360:
        fields["camera_hfov_deg"] = float(msg.hfov)
    return fields


def _finite_only(decoder: Decoder) -> Decoder:
    """A float field that is NaN or ±inf (a float the sender filled badly, or bytes forged with a valid CRC) is
    unknown: left out, so the previous value stands and no NaN reaches geolocation or the published state."""

    @functools.wraps(decoder)
    def decode_finite(msg: Any) -> Fields | None:
        fields = decoder(msg)
        if fields is None:
            return None
        return {k: v for k, v in fields.items() if not isinstance(v, float) or math.isfinite(v)}

    return decode_finite


# Every message type the reader turns into state; any other type is only counted.
_DECODERS: dict[str, Decoder] = {
    "HEARTBEAT": decode_heartbeat,
    "GLOBAL_POSITION_INT": decode_global_position_int,
    "ATTITUDE": decode_attitude,
    "VFR_HUD": decode_vfr_hud,
    "GPS_RAW_INT": decode_gps_raw_int,
    "SYS_STATUS": decode_sys_status,
    "GIMBAL_DEVICE_ATTITUDE_STATUS": decode_gimbal_device_attitude_status,
    "MOUNT_ORIENTATION": decode_mount_orientation,
    "MOUNT_STATUS": decode_mount_status,
    "CAMERA_INFORMATION": decode_camera_information,
    "VIDEO_STREAM_INFORMATION": decode_video_stream,
    "VIDEO_STREAM_STATUS": decode_video_stream,
}
_GUARDED = {decoder: _finite_only(decoder) for decoder in set(_DECODERS.values())}
DECODERS: dict[str, Decoder] = {mtype: _GUARDED[decoder] for mtype, decoder in _DECODERS.items()}


def decode(msg: Any) -> Fields | None:
    """The fields a message states (its type must be in DECODERS)."""
    mtype = msg.get_type()
    decoder = DECODERS.get(mtype)
    if decoder is None:
        raise KeyError(f"no decoder for MAVLink message type {mtype}")
    return decoder(msg)
