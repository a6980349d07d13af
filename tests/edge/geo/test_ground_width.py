"""Ground width of a box (between its bottom corners), for the rules' minimum size in metres: from the camera
pose or the site calibration, and none where the object has no ground position."""

from __future__ import annotations

import math

import numpy as np
import pymap3d
import pytest

from edge.config.geo import GeoConfig
from edge.frame import Frame
from edge.geo.locator import StreamGeolocator
from edge.geo.projection import CameraPose, ground_distances, project_pixels
from edge.track.tracker import TrackedBox

W, H = 1000, 1000


def test_nadir_camera_width_follows_the_field_of_view() -> None:
    # 100 m up looking straight down with a 90° field of view: the frame's width is 200 m on the ground.
    pose = CameraPose(lat=52.0, lon=5.0, alt_m=100.0, platform_yaw_deg=0, platform_pitch_deg=0, platform_roll_deg=0,
                      gimbal_pitch_deg=-90, hfov_deg=90.0, vfov_deg=90.0)  # fmt: skip
    widths = ground_distances(pose, [[450, 500], [0, 500]], [[550, 500], [1000, 500]], W, H)
    centre = 2 * 100 * (math.tan(math.radians(45)) * 0.1)  # 100 px of 1000 at the centre of the frame
    assert widths[0] == pytest.approx(centre, rel=1e-3) and widths[1] == pytest.approx(200.0, rel=1e-3)
    horizon = CameraPose(**{**{f: getattr(pose, f) for f in pose.__slots__}, "gimbal_pitch_deg": 0.0})
    assert np.isnan(ground_distances(horizon, [[450, 100]], [[550, 100]], W, H)[0])  # above the horizon


def test_the_geolocation_stage_sets_size_m_from_the_calibration() -> None:
    pose = CameraPose(lat=48.1, lon=11.5, alt_m=12.0, platform_yaw_deg=45, platform_pitch_deg=0, platform_roll_deg=0,
                      gimbal_pitch_deg=-30, hfov_deg=70)  # fmt: skip
    calibration = [[100, 950], [900, 950], [800, 600], [200, 600]]
    truth = project_pixels(pose, np.asarray(calibration, float), W, H)
    config = GeoConfig.model_validate(
        {"calibration": [{"pixel": p, "lat": g.lat, "lon": g.lon} for p, g in zip(calibration, truth, strict=True)]}
    )
    frame = Frame("site", 1, capture_time=0.0, pts=0.0, width=W, height=H)
    frame.tracks = [TrackedBox(1, 400, 700, 480, 900, 0.9, 0)]
    StreamGeolocator(config).process(frame)
    left, right = project_pixels(pose, [[400, 900], [480, 900]], W, H)
    north, east, _ = pymap3d.geodetic2ned(left.lat, left.lon, 0, right.lat, right.lon, 0)
    assert frame.tracks[0].geo is not None
    assert frame.tracks[0].size_m == pytest.approx(math.hypot(north, east), abs=0.01)
    # This calibration's homography comes out with w < 0 on the ground: the horizon test follows the side the
    # calibration points are on, not the sign of w (the horizon is near v = 88 here).
    homography = StreamGeolocator(config).homography
    assert homography is not None and homography.locate([[500, 50]]) == [None]
    assert np.isnan(homography.ground_distances([[450, 50]], [[550, 50]])[0])


def test_no_ground_position_no_ground_width() -> None:
    config = GeoConfig.model_validate({"telemetry": {"source": "klv"}})
    frame = Frame("drone", 1, capture_time=0.0, pts=0.0, width=W, height=H)  # no KLV yet
    frame.tracks = [TrackedBox(1, 400, 700, 480, 900, 0.9, 0)]
    StreamGeolocator(config).process(frame)
    assert frame.tracks[0].geo is None and frame.tracks[0].size_m is None
