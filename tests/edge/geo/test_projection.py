"""Pixel → ground projection on constructed cases where the answer is known geometrically."""

from __future__ import annotations

import math

import pymap3d
import pytest

from edge.geo.projection import CameraPose, GimbalFrame, project_pixels

LAT, LON = 52.0, 5.0
W, H = 1000, 1000


def _ned(point) -> tuple[float, float]:
    """Ground point as metres north/east of the camera's foot point."""
    n, e, _ = pymap3d.geodetic2ned(point.lat, point.lon, 0.0, LAT, LON, 0.0)
    return n, e


def _pose(**kw) -> CameraPose:
    base = dict(
        lat=LAT,
        lon=LON,
        alt_m=100.0,
        platform_yaw_deg=0,
        platform_pitch_deg=0,
        platform_roll_deg=0,
        gimbal_pitch_deg=-90,
        hfov_deg=90.0,
        vfov_deg=90.0,
    )
    return CameraPose(**{**base, **kw})


def test_nadir_centre_is_below_and_edges_follow_the_fov() -> None:
    centre, right, top = project_pixels(_pose(), [[500, 500], [1000, 500], [500, 0]], W, H)
    assert centre is not None and right is not None and top is not None
    assert _ned(centre) == pytest.approx((0, 0), abs=0.01) and centre.range_m == pytest.approx(100, abs=0.01)
    assert _ned(right) == pytest.approx((0, 100), abs=0.05)  # tan(45°) · 100 m to the east
    assert _ned(top) == pytest.approx((100, 0), abs=0.05)  # image top = aircraft forward = north


def test_oblique_and_heading() -> None:
    (ahead,) = project_pixels(_pose(gimbal_pitch_deg=-45), [[500, 500]], W, H)
    assert ahead is not None and _ned(ahead) == pytest.approx((100, 0), abs=0.05)
    assert ahead.range_m == pytest.approx(100 * math.sqrt(2), abs=0.01)
    (east,) = project_pixels(_pose(gimbal_pitch_deg=-45, platform_yaw_deg=90), [[500, 500]], W, H)
    assert _ned(east) == pytest.approx((0, 100), abs=0.05)


def test_gimbal_yaw_relative_to_the_airframe() -> None:
    (point,) = project_pixels(_pose(gimbal_pitch_deg=-45, gimbal_yaw_deg=90, platform_yaw_deg=90), [[500, 500]], W, H)
    assert _ned(point) == pytest.approx((-100, 0), abs=0.05)  # heading east + 90° → looking south


def test_platform_pitch_tilts_a_body_fixed_camera() -> None:
    # A camera fixed 45° down on an airframe pitched 15° nose-down looks 60° down.
    (point,) = project_pixels(_pose(gimbal_pitch_deg=-45, platform_pitch_deg=-15), [[500, 500]], W, H)
    assert _ned(point) == pytest.approx((100 / math.tan(math.radians(60)), 0), abs=0.05)


def test_stabilised_gimbal_ignores_airframe_pitch_and_roll() -> None:
    pose = _pose(
        gimbal_pitch_deg=-45,
        gimbal_yaw_deg=0,
        platform_pitch_deg=-20,
        platform_roll_deg=30,
        platform_yaw_deg=90,
        gimbal_frame=GimbalFrame.VEHICLE_YAW,
    )
    (point,) = project_pixels(pose, [[500, 500]], W, H)
    assert _ned(point) == pytest.approx((0, 100), abs=0.05)  # yaw follows the heading (east)
    earth = _pose(gimbal_pitch_deg=-45, gimbal_yaw_deg=0, platform_yaw_deg=90, gimbal_frame=GimbalFrame.EARTH)
    (north,) = project_pixels(earth, [[500, 500]], W, H)
    assert _ned(north) == pytest.approx((100, 0), abs=0.05)  # yaw locked to north


def test_rays_at_or_above_the_horizon_have_no_position() -> None:
    level, up, top_edge = project_pixels(_pose(gimbal_pitch_deg=0), [[500, 500], [500, 0], [500, 1000]], W, H)
    assert level is None and up is None  # a level ray from 100 m passes over the curved earth
    assert top_edge is not None  # the bottom of the image still sees the ground: 45° down
    assert _ned(top_edge) == pytest.approx((100, 0), abs=0.05)
    assert project_pixels(_pose(gimbal_pitch_deg=10), [[500, 500]], W, H) == [None]


def test_ground_elevation_and_camera_below_ground() -> None:
    (point,) = project_pixels(_pose(alt_m=150, gimbal_pitch_deg=-45), [[500, 500]], W, H, ground_elev_m=50)
    assert point is not None and point.range_m == pytest.approx(100 * math.sqrt(2), abs=0.01)
    assert project_pixels(_pose(alt_m=10), [[500, 500]], W, H, ground_elev_m=50) == [None]


def test_uncertainty_grows_with_obliqueness_and_is_infinite_near_the_horizon() -> None:
    from edge.geo.projection import PoseUncertainty, geolocate

    sigma = PoseUncertainty(horizontal_m=2.0, vertical_m=0.0, attitude_deg=0.0, gimbal_deg=0.0)
    (nadir,) = geolocate(_pose(), [[500, 500]], W, H, sigma=sigma)
    assert nadir is not None and nadir.uncertainty_m == pytest.approx(2.0)  # GPS error moves it 1:1
    sigma = PoseUncertainty(horizontal_m=0.0, vertical_m=0.0, attitude_deg=0.0, gimbal_deg=1.0)
    (straight,) = geolocate(_pose(), [[500, 500]], W, H, sigma=sigma)
    (oblique,) = geolocate(_pose(gimbal_pitch_deg=-20), [[500, 500]], W, H, sigma=sigma)
    assert straight is not None and oblique is not None
    # 1° of gimbal pitch at nadir from 100 m: 100·tan(1°) ≈ 1.75 m (pitch and yaw-about-nadir terms).
    assert straight.uncertainty_m == pytest.approx(100 * math.tan(math.radians(1)), rel=0.05)
    assert oblique.uncertainty_m > 5 * straight.uncertainty_m
    (grazing,) = geolocate(_pose(gimbal_pitch_deg=-0.5), [[500, 500]], W, H, sigma=sigma)
    assert grazing is not None and math.isinf(grazing.uncertainty_m)
