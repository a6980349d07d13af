"""Pixel → ground position for a camera on a moving platform.

A pixel defines a ray from the camera; the ray is rotated from the camera's optical frame through
the gimbal and the platform's attitude into the local North-East-Down frame, then intersected
with the WGS84 ellipsoid raised to the ground elevation (exact in ECEF, so long oblique slant
ranges stay right where a flat-earth offset would drift). A ray that never meets the ground
(at or above the horizon) has no position, and says so.

Angle conventions (aerospace, as in MAVLink and MISB ST 0601): heading/yaw clockwise from true
north, pitch positive nose-up, roll positive right-wing-down; gimbal pitch (elevation) negative =
looking down. What the gimbal angles are relative to is `GimbalFrame`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import pymap3d

WGS84 = pymap3d.Ellipsoid.from_name("wgs84")

# Camera optical frame (x right, y down, z forward) → gimbal/body frame (x forward, y right, z down).
_CAMERA_TO_BODY = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class GimbalFrame(StrEnum):
    """What a gimbal's angles are measured against."""

    BODY = "body"  # all three relative to the airframe (MISB ST 0601 / EG0104 sensor angles, fixed mounts)
    VEHICLE_YAW = "vehicle_yaw"  # stabilised: pitch/roll vs the horizon, yaw vs the heading (MAVLink default)
    EARTH = "earth"  # stabilised and yaw locked to north (MAVLink GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME)


@dataclass(slots=True, frozen=True)
class CameraPose:
    """Where a camera is and where it looks, from telemetry (MAVLink or KLV)."""

    lat: float
    lon: float
    alt_m: float  # above the WGS84 ellipsoid, or AMSL (then give ground elevation AMSL too)
    platform_yaw_deg: float
    platform_pitch_deg: float
    platform_roll_deg: float
    gimbal_yaw_deg: float = 0.0
    gimbal_pitch_deg: float = -90.0
    gimbal_roll_deg: float = 0.0
    gimbal_frame: GimbalFrame = GimbalFrame.BODY
    hfov_deg: float = 60.0
    vfov_deg: float | None = None  # None: from hfov and the image's aspect ratio


@dataclass(slots=True, frozen=True)
class GroundPoint:
    lat: float
    lon: float
    range_m: float  # camera → ground distance along the ray


def _rotation_zyx(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Body → parent rotation for intrinsic yaw-pitch-roll (Z-Y-X) angles."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def camera_to_ned(pose: CameraPose) -> np.ndarray:
    """Rotation taking a ray in the camera's optical frame to local North-East-Down."""
    if pose.gimbal_frame is GimbalFrame.BODY:
        platform = _rotation_zyx(pose.platform_yaw_deg, pose.platform_pitch_deg, pose.platform_roll_deg)
        gimbal = _rotation_zyx(pose.gimbal_yaw_deg, pose.gimbal_pitch_deg, pose.gimbal_roll_deg)
        return platform @ gimbal @ _CAMERA_TO_BODY
    yaw = pose.gimbal_yaw_deg + (pose.platform_yaw_deg if pose.gimbal_frame is GimbalFrame.VEHICLE_YAW else 0.0)
    return _rotation_zyx(yaw, pose.gimbal_pitch_deg, pose.gimbal_roll_deg) @ _CAMERA_TO_BODY


def pixel_rays(pose: CameraPose, u: np.ndarray, v: np.ndarray, width: int, height: int) -> np.ndarray:
    """Unit rays in the camera's optical frame for pixel coordinates (pinhole model, centre principal point)."""
    tan_h = math.tan(math.radians(pose.hfov_deg) / 2)
    tan_v = math.tan(math.radians(pose.vfov_deg) / 2) if pose.vfov_deg else tan_h * height / width
    x = (2.0 * np.asarray(u, dtype=float) / width - 1.0) * tan_h
    y = (2.0 * np.asarray(v, dtype=float) / height - 1.0) * tan_v
    rays = np.stack([x, y, np.ones_like(x)], axis=-1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def _intersect(pose: CameraPose, rays_ned: np.ndarray, ground_elev_m: float) -> tuple[np.ndarray, ...]:
    """Arrays (lat, lon, range, hit) of where NED rays meet the ellipsoid raised by `ground_elev_m`."""
    origin = np.array(pymap3d.geodetic2ecef(pose.lat, pose.lon, pose.alt_m, ell=WGS84))
    # NED → ECEF direction vectors (ENU order for pymap3d: east, north, up = -down).
    ex, ey, ez = pymap3d.enu2uvw(rays_ned[:, 1], rays_ned[:, 0], -rays_ned[:, 2], pose.lat, pose.lon)
    directions = np.stack([ex, ey, ez], axis=-1)
    axes = np.array([WGS84.semimajor_axis, WGS84.semimajor_axis, WGS84.semiminor_axis]) + ground_elev_m
    o, d = origin / axes, directions / axes
    a = np.sum(d * d, axis=-1)
    b = 2.0 * np.sum(d * o, axis=-1)
    c = float(np.dot(o, o) - 1.0)
    disc = b * b - 4 * a * c
    # Nearest crossing; none when the camera is below the surface, the ray misses the earth, or the
    # crossing is behind the camera (at or above the horizon).
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
    hits = (c > 0) & (disc >= 0) & (t > 0)
    ground = origin + t[:, None] * directions
    lat, lon, _ = pymap3d.ecef2geodetic(ground[:, 0], ground[:, 1], ground[:, 2], ell=WGS84)
    return np.atleast_1d(lat), np.atleast_1d(lon), t, hits


def intersect_ground(pose: CameraPose, rays_ned: np.ndarray, ground_elev_m: float) -> list[GroundPoint | None]:
    """Where each NED ray meets the ellipsoid raised by `ground_elev_m`; None above the horizon."""
    lat, lon, t, hits = _intersect(pose, rays_ned, ground_elev_m)
    return [GroundPoint(float(lat[i]), float(lon[i]), float(t[i])) if hits[i] else None for i in range(len(t))]


def _project(pose: CameraPose, pixels: np.ndarray, width: int, height: int, ground_elev_m: float) -> tuple:
    rays = pixel_rays(pose, pixels[:, 0], pixels[:, 1], width, height)
    return _intersect(pose, rays @ camera_to_ned(pose).T, ground_elev_m)


def project_pixels(
    pose: CameraPose, pixels: np.ndarray, width: int, height: int, ground_elev_m: float = 0.0
) -> list[GroundPoint | None]:
    """Ground points of pixel coordinates `pixels` (N×2, u right, v down) of a width×height image."""
    lat, lon, t, hits = _project(pose, np.atleast_2d(np.asarray(pixels, dtype=float)), width, height, ground_elev_m)
    return [GroundPoint(float(lat[i]), float(lon[i]), float(t[i])) if hits[i] else None for i in range(len(t))]


def ground_distances(
    pose: CameraPose, first: np.ndarray, second: np.ndarray, width: int, height: int, ground_elev_m: float = 0.0
) -> np.ndarray:
    """Metres on the ground between pixels `first[i]` and `second[i]` (N×2 each), e.g. a box's bottom corners for
    its ground width; NaN where either ray misses the ground. One vectorised projection of both sets."""
    pixels = np.concatenate([np.atleast_2d(np.asarray(first, dtype=float)), np.atleast_2d(np.asarray(second, float))])
    lat, lon, _, hits = _project(pose, pixels, width, height, ground_elev_m)
    n = len(pixels) // 2
    north, east, _ = pymap3d.geodetic2ned(lat[n:], lon[n:], 0.0, lat[:n], lon[:n], 0.0, ell=WGS84)
    return np.where(hits[:n] & hits[n:], np.hypot(north, east), np.nan)


@dataclass(slots=True, frozen=True)
class PoseUncertainty:
    """1-sigma errors of the telemetry a pose came from (GPS accuracy, attitude sensor noise)."""

    horizontal_m: float = 3.0
    vertical_m: float = 5.0
    attitude_deg: float = 1.0
    gimbal_deg: float = 1.0


@dataclass(slots=True, frozen=True)
class Geolocation:
    """A pixel's ground position with its 1-sigma horizontal error in metres."""

    lat: float
    lon: float
    uncertainty_m: float
    range_m: float


_PERTURBED = (
    ("alt_m", "vertical_m"),
    ("platform_yaw_deg", "attitude_deg"),
    ("platform_pitch_deg", "attitude_deg"),
    ("platform_roll_deg", "attitude_deg"),
    ("gimbal_yaw_deg", "gimbal_deg"),
    ("gimbal_pitch_deg", "gimbal_deg"),
)


def geolocate(
    pose: CameraPose,
    pixels: np.ndarray,
    width: int,
    height: int,
    ground_elev_m: float = 0.0,
    sigma: PoseUncertainty | None = None,
) -> list[Geolocation | None]:
    """Ground positions of pixels with an error propagated from the pose's uncertainty.

    First-order propagation: each telemetry input is moved by its 1-sigma and the ground point's
    displacement is taken as that input's contribution; contributions add in quadrature, and the
    platform's horizontal error moves the ground point one to one. Near the horizon a small angle
    error moves the point a long way (or off the ground): the error is then infinite, and says so.
    """
    sigma = sigma or PoseUncertainty()
    pixels = np.atleast_2d(np.asarray(pixels, dtype=float))
    lat, lon, t, hits = _project(pose, pixels, width, height, ground_elev_m)
    variance = np.full(len(t), sigma.horizontal_m**2)
    for field, sigma_name in _PERTURBED:
        step = getattr(sigma, sigma_name)
        if step == 0:
            continue
        if pose.gimbal_frame is not GimbalFrame.BODY and field in ("platform_pitch_deg", "platform_roll_deg"):
            continue  # a stabilised gimbal does not follow the airframe's pitch and roll
        moved = replace(pose, **{field: getattr(pose, field) + step})
        lat2, lon2, _, hits2 = _project(moved, pixels, width, height, ground_elev_m)
        north, east, _ = pymap3d.geodetic2ned(lat2, lon2, 0.0, lat, lon, 0.0, ell=WGS84)
        variance += np.where(hits2, np.hypot(north, east) ** 2, np.inf)
    return [
        Geolocation(float(lat[i]), float(lon[i]), float(math.sqrt(variance[i])), float(t[i])) if hits[i] else None
        for i in range(len(t))
    ]
