"""Fixed-camera ground homography on a constructed scene with a known camera."""

from __future__ import annotations

import numpy as np
import pymap3d
import pytest

from edge.geo.homography import CalibrationError, GroundHomography
from edge.geo.projection import CameraPose, project_pixels

W, H = 1280, 720
# A mast camera 12 m up, looking 30° down towards north-east: ground truth comes from the
# independent ray-casting projection.
POSE = CameraPose(
    lat=48.1,
    lon=11.5,
    alt_m=12.0,
    platform_yaw_deg=45,
    platform_pitch_deg=0,
    platform_roll_deg=0,
    gimbal_pitch_deg=-30,
    hfov_deg=70,
)


def _truth(pixels):
    return [(p.lat, p.lon) for p in project_pixels(POSE, np.asarray(pixels, float), W, H)]


def test_homography_matches_ray_casting_on_flat_ground() -> None:
    calibration = [[100, 650], [1180, 650], [1000, 420], [280, 420], [640, 500]]
    homography = GroundHomography(calibration, _truth(calibration))
    probes = [[640, 600], [300, 550], [1100, 450], [700, 380]]
    for found, (lat, lon) in zip(homography.locate(probes), _truth(probes), strict=True):
        assert found is not None
        north, east, _ = pymap3d.geodetic2ned(found.lat, found.lon, 0, lat, lon, 0)
        assert np.hypot(north, east) < 0.05  # centimetres: flat ground is exactly a homography
    assert homography.rms_m < 0.01


def test_bad_calibrations_are_named() -> None:
    with pytest.raises(CalibrationError, match="at least 4"):
        GroundHomography([[0, 0], [1, 0], [0, 1]], [(0, 0), (0, 1e-5), (1e-5, 0)])
    with pytest.raises(CalibrationError, match="degenerate"):
        line = [[0, 0], [10, 10], [20, 20], [30, 30]]
        GroundHomography(line, [(48.0, 11.0), (48.0001, 11.0001), (48.0002, 11.0002), (48.0003, 11.0003)])
