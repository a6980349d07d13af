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


def test_site_camera_events_get_positions_from_the_configured_calibration() -> None:
    """The per-stream locator with `geo.calibration` gives footpoints the same lat/lon as ray casting."""
    from edge.config.geo import GeoConfig
    from edge.frame import Frame
    from edge.geo.locator import StreamGeolocator
    from edge.track.tracker import TrackedBox
    from smarteye.wire.messages import GeoStatus

    calibration = [[100, 650], [1180, 650], [1000, 420], [280, 420]]
    config = GeoConfig.model_validate(
        {
            "calibration": [
                {"pixel": p, "lat": lat, "lon": lon}
                for p, (lat, lon) in zip(calibration, _truth(calibration), strict=True)
            ]
        }
    )
    locator = StreamGeolocator(config)
    frame = Frame("site", 1, capture_time=0.0, pts=0.0, width=W, height=H)
    boxes = [TrackedBox(1, 600, 500, 680, 600, 0.9, 0), TrackedBox(2, 250, 400, 300, 520, 0.8, 0)]
    positions, status = locator.locate(frame, boxes)
    assert status is GeoStatus.OK
    for box, position in zip(boxes, positions, strict=True):
        lat, lon = _truth([[(box.x1 + box.x2) / 2, box.y2]])[0]
        north, east, _ = pymap3d.geodetic2ned(position.lat, position.lon, 0, lat, lon, 0)
        assert position.source == "homography" and np.hypot(north, east) < 0.05
        assert position.uncertainty_m == config.horizontal_error_m  # exact fit: the configured floor
