"""The demo's made-up drone, read by the edge's own MAVLink reader: its position is on the circle and
the centre of its picture falls on the point it circles (so geolocation and the pilot map make sense)."""

from __future__ import annotations

import math

from edge.config.geo import CameraConfig
from edge.geo.locator import pose_from_vehicle
from edge.geo.projection import project_pixels
from edge.telemetry.mavlink_reader import MavlinkReader
from smarteye.sim.ports import free_udp_port
from smarteye.sim.synthetic_drone import EARTH_RADIUS_M, SyntheticDroneFlight
from tests.support.polling import wait_for

SITE = (46.5191, 6.5668)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = math.radians(a[0] - b[0]) * EARTH_RADIUS_M
    east = math.radians(a[1] - b[1]) * EARTH_RADIUS_M * math.cos(math.radians(b[0]))
    return math.hypot(north, east)


def test_pose_circles_the_site_and_looks_at_it() -> None:
    flight = SyntheticDroneFlight("udpout:127.0.0.1:1", *SITE, altitude_m=40, radius_m=60, lap_s=100)
    for elapsed in (0.0, 25.0, 60.0):
        lat, lon, heading, pitch = flight.pose_at(elapsed)
        assert abs(_metres((lat, lon), SITE) - 60) < 0.5
        assert pitch == -math.degrees(math.atan2(40, 60))
        to_site = math.degrees(math.atan2((SITE[1] - lon) * math.cos(math.radians(SITE[0])), SITE[0] - lat)) % 360
        assert abs((heading - to_site + 180) % 360 - 180) < 0.1  # nose (and gimbal) towards the site
    assert flight.pose_at(0.0)[2] == 180.0  # north of the site, looking south


def test_edge_reader_geolocates_the_picture_centre_on_the_site() -> None:
    port = free_udp_port()
    reader = MavlinkReader(f"udpin:127.0.0.1:{port}")
    reader.start()
    try:
        with SyntheticDroneFlight(f"udpout:127.0.0.1:{port}", *SITE, altitude_m=40, radius_m=60) as flight:

            def located() -> bool:
                state = reader.state()
                return state is not None and state.gimbal_pitch_deg is not None and state.camera_hfov_deg is not None

            wait_for(located, timeout=10)
            state = reader.state()
            assert state is not None and state.lat is not None and state.lon is not None
            assert abs(_metres((state.lat, state.lon), SITE) - 60) < 2
            pose = pose_from_vehicle(state, CameraConfig())
            assert pose is not None
            (centre,) = project_pixels(pose, [[384, 288]], 768, 576, 0.0)
            assert centre is not None and _metres((centre.lat, centre.lon), SITE) < 5
            assert flight.sent > 0
    finally:
        reader.stop()
