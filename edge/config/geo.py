"""Configuration of geolocation for one source: drone telemetry (MAVLink or the stream's own KLV)
or, for a fixed site camera, a ground homography calibrated on site."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from edge.geo.projection import GimbalFrame
from smarteye.strict import StrictModel


class TelemetrySource(StrEnum):
    MAVLINK = "mavlink"
    KLV = "klv"


class TelemetryConfig(StrictModel):
    """Where a drone stream's pose comes from, and how its clock relates to the video."""

    source: TelemetrySource = Field(title="Source", description="mavlink (a link URL) or klv (the stream's own).")
    mavlink_url: str | None = Field(
        None,
        title="MAVLink URL",
        description="udpin:0.0.0.0:14550, tcp:host:5760, /dev/ttyUSB0,57600 or a .tlog to replay.",
    )
    system_id: int | None = Field(None, ge=1, le=255, title="System id", description="Vehicle; None = the first.")
    time_offset_s: float = Field(
        0.0, ge=-60, le=60, title="Time offset", description="Added to the frame time to find its telemetry."
    )
    stale_after_s: float = Field(
        2.0, gt=0, le=60, title="Stale after", description="Telemetry older than this is flagged, never reused."
    )
    camera_protocol: bool = Field(
        True,
        title="MAVLink camera",
        description="On a live MAVLink link, answer as the vehicle's camera (component 100): QGroundControl finds "
        "the stream's udp_outputs video by VIDEO_STREAM_INFORMATION and sees the tracked target.",
    )

    @model_validator(mode="after")
    def _check(self) -> TelemetryConfig:
        if self.source is TelemetrySource.MAVLINK and not self.mavlink_url:
            raise ValueError("mavlink_url is required when source is mavlink")
        return self


class CameraConfig(StrictModel):
    """The camera's optics and mount, for whatever telemetry does not report."""

    hfov_deg: float | None = Field(
        None, gt=0, lt=180, title="Horizontal FOV", description="None: from CAMERA_INFORMATION or KLV."
    )
    vfov_deg: float | None = Field(None, gt=0, lt=180, title="Vertical FOV", description="None: from the aspect ratio.")
    gimbal_frame: GimbalFrame = Field(
        GimbalFrame.VEHICLE_YAW, title="Gimbal frame", description="What the gimbal's reported angles are relative to."
    )
    mount_pitch_deg: float = Field(
        -90.0, ge=-90, le=90, title="Mount pitch", description="Fixed camera pitch when no gimbal attitude is reported."
    )
    mount_yaw_deg: float = Field(0.0, ge=-180, le=360, title="Mount yaw", description="Fixed camera yaw vs the nose.")


class CalibrationPoint(StrictModel):
    """One pixel of a fixed camera's image and the surveyed position it shows."""

    pixel: tuple[float, float] = Field(title="Pixel", description="(u, v): u to the right, v down, in pixels.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class GeoConfig(StrictModel):
    """How this source's detections get a ground position (lat/lon with an error in metres)."""

    telemetry: TelemetryConfig | None = Field(None, title="Telemetry", description="For cameras on drones.")
    calibration: list[CalibrationPoint] | None = Field(
        None, title="Calibration", description="For fixed cameras: ≥ 4 pixel ↔ lat/lon pairs on the ground."
    )
    camera: CameraConfig = Field(default_factory=CameraConfig, title="Camera")
    ground_elevation_m: float = Field(
        0.0, ge=-500, le=9000, title="Ground elevation", description="Flat ground height (same datum as altitudes)."
    )
    horizontal_error_m: float = Field(
        3.0, ge=0, le=1000, title="Position error", description="1-sigma position error if telemetry has none."
    )
    vertical_error_m: float = Field(5.0, ge=0, le=1000, title="Altitude error", description="1-sigma altitude error.")
    attitude_error_deg: float = Field(1.0, ge=0, le=45, title="Attitude error", description="1-sigma attitude error.")
    gimbal_error_deg: float = Field(1.0, ge=0, le=45, title="Gimbal error", description="1-sigma gimbal angle error.")

    @model_validator(mode="after")
    def _check(self) -> GeoConfig:
        if (self.telemetry is None) == (self.calibration is None):
            raise ValueError("give exactly one of telemetry (drone) or calibration (fixed camera)")
        if self.calibration is not None and len(self.calibration) < 4:
            raise ValueError(f"calibration needs at least 4 points, got {len(self.calibration)}")
        return self
