"""Telemetry values as they travel on the wire: a KLV sample and a MAVLink vehicle's state.

The edge fills them (edge.telemetry) and the station stores and shows them; both import them from here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from smarteye.wire.vmti import VmtiReport

Corner = tuple[float, float]
GimbalYawFrame = Literal["vehicle", "earth"]


class SensorMetadata(BaseModel):
    """Platform/sensor state from one KLV packet, in engineering units, whatever the source standard."""

    standard: Literal["ST0601", "EG0104"] = Field(description="Which MISB set the packet was: ST 0601 or EG 0104.")
    pts: float | None = Field(None, description="Presentation time (s) of the carrying data packet in the stream.")
    time: float | None = Field(None, description="Precision/user-defined timestamp, UTC epoch seconds.")
    platform_heading_deg: float | None = Field(None, description="Platform heading from true north, 0..360°.")
    platform_pitch_deg: float | None = Field(None, description="Platform pitch, positive nose up, degrees.")
    platform_roll_deg: float | None = Field(None, description="Platform roll, positive right wing down, degrees.")
    sensor_lat: float | None = Field(None, description="Sensor latitude, WGS84 degrees.")
    sensor_lon: float | None = Field(None, description="Sensor longitude, WGS84 degrees.")
    sensor_alt_m: float | None = Field(None, description="Sensor true altitude above mean sea level, metres.")
    hfov_deg: float | None = Field(None, description="Sensor horizontal field of view, degrees.")
    vfov_deg: float | None = Field(None, description="Sensor vertical field of view, degrees.")
    sensor_rel_az_deg: float | None = Field(
        None, description="Sensor azimuth relative to the platform longitudinal axis, 0..360° clockwise."
    )
    sensor_rel_el_deg: float | None = Field(
        None, description="Sensor elevation relative to the platform longitudinal-transverse plane (down < 0)."
    )
    sensor_rel_roll_deg: float | None = Field(None, description="Sensor roll relative to the platform, degrees.")
    slant_range_m: float | None = Field(None, description="Distance sensor → frame centre, metres.")
    frame_center_lat: float | None = Field(None, description="Latitude of the image centre on the ground.")
    frame_center_lon: float | None = Field(None, description="Longitude of the image centre on the ground.")
    frame_center_elev_m: float | None = Field(None, description="Terrain elevation (MSL) at the image centre, m.")
    corners: list[Corner] | None = Field(
        None, description="Ground (lat, lon) of image corners 1-4: upper-left, upper-right, lower-right, lower-left."
    )
    checksum_ok: bool | None = Field(None, description="ST 0601 checksum verified; None when the set has none.")
    vmti: VmtiReport | None = Field(
        None, description="Targets the aircraft itself detected (MISB ST 0903 VMTI) in the same data packet."
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Other decoded items; unknown items kept raw as hex strings."
    )


class VehicleState(BaseModel):
    """What one MAVLink system (vehicle) reports, merged from several message types.

    Every field but `system_id` is optional: a field is None until a message carrying it arrived.
    Angles follow MAVLink/aerospace conventions: yaw/heading clockwise from true north, pitch
    positive nose-up, roll positive right-wing-down, gimbal pitch negative = looking down.
    """

    system_id: int = Field(description="MAVLink system id of the vehicle.")
    time: float | None = Field(
        None,
        description="Time of the latest update, epoch s (for tlogs the log's own timestamps; raw byte logs "
        "without timestamps use the autopilot's boot time in s). For state_at() the requested time.",
    )
    lat: float | None = Field(None, description="Latitude, deg (WGS84), GLOBAL_POSITION_INT.")
    lon: float | None = Field(None, description="Longitude, deg (WGS84), GLOBAL_POSITION_INT.")
    alt_amsl_m: float | None = Field(None, description="Altitude above mean sea level, m.")
    alt_rel_m: float | None = Field(None, description="Altitude above the home position, m.")
    roll_deg: float | None = Field(None, description="Vehicle roll, deg in [-180, 180), right wing down positive.")
    pitch_deg: float | None = Field(None, description="Vehicle pitch, deg, nose up positive.")
    yaw_deg: float | None = Field(None, description="Vehicle yaw, deg in [-180, 180), clockwise from true north.")
    heading_deg: float | None = Field(None, description="Heading, deg in [0, 360), clockwise from true north.")
    groundspeed_mps: float | None = Field(None, description="Horizontal speed over ground, m/s.")
    climb_mps: float | None = Field(None, description="Vertical speed, m/s, up positive.")
    battery_voltage_v: float | None = Field(None, description="Main battery voltage, V (SYS_STATUS).")
    battery_remaining_pct: float | None = Field(None, description="Main battery remaining, % (SYS_STATUS).")
    flight_mode: str | None = Field(None, description="Flight mode name (pymavlink mode_string_v10).")
    armed: bool | None = Field(None, description="Motors armed (HEARTBEAT base_mode safety-armed flag).")
    vehicle_type: str | None = Field(None, description="MAV_TYPE name without prefix, e.g. QUADROTOR, FIXED_WING.")
    autopilot: str | None = Field(None, description="MAV_AUTOPILOT name without prefix, e.g. ARDUPILOTMEGA, PX4.")
    gps_fix_type: int | None = Field(
        None, description="GPS_FIX_TYPE: 0 no GPS, 1 no fix, 2 2D, 3 3D, 4 DGPS, 5 RTK float, 6 RTK fixed."
    )
    satellites: int | None = Field(None, description="Satellites visible (GPS_RAW_INT).")
    h_acc_m: float | None = Field(None, description="GPS horizontal position uncertainty, m (GPS_RAW_INT h_acc).")
    v_acc_m: float | None = Field(None, description="GPS vertical position uncertainty, m (GPS_RAW_INT v_acc).")
    gimbal_roll_deg: float | None = Field(None, description="Gimbal roll, deg, relative to the horizon.")
    gimbal_pitch_deg: float | None = Field(
        None, description="Gimbal pitch, deg, relative to the horizon; negative looks down."
    )
    gimbal_yaw_deg: float | None = Field(None, description="Gimbal yaw, deg, in the frame named by gimbal_yaw_frame.")
    gimbal_yaw_frame: GimbalYawFrame | None = Field(
        None,
        description="'vehicle': gimbal yaw relative to the vehicle heading (pitch/roll still vs the horizon); "
        "'earth': gimbal yaw clockwise from true north.",
    )
    gimbal_source: str | None = Field(
        None,
        description="Message the gimbal angles came from: GIMBAL_DEVICE_ATTITUDE_STATUS, MOUNT_ORIENTATION "
        "or MOUNT_STATUS.",
    )
    camera_hfov_deg: float | None = Field(
        None, description="Camera horizontal field of view, deg (CAMERA_INFORMATION, else VIDEO_STREAM_*)."
    )
    camera_vfov_deg: float | None = Field(None, description="Camera vertical field of view, deg (CAMERA_INFORMATION).")
    camera_resolution_h: int | None = Field(None, description="Camera horizontal resolution, px.")
    camera_resolution_v: int | None = Field(None, description="Camera vertical resolution, px.")
    link_ok: bool = Field(False, description="A vehicle heartbeat arrived within stale_after_s of `time`/now.")
    last_heartbeat: float | None = Field(None, description="Time of the last vehicle HEARTBEAT, same clock as `time`.")
