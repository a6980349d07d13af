"""Where objects are and the shapes they are tested against: footpoints, zones, sides of a line (the `in`
direction's convention in both spaces) and crossings of the segment itself."""

from __future__ import annotations

import numpy as np

from edge.rules.geometry import LEFT, ON, RIGHT, LineShape, ZoneShape, footpoints, ground_points, positions
from edge.track.tracker import TrackedBox
from smarteye.wire.messages import GeoPosition
from smarteye.wire.rules import Line, Space, Zone

NAN = float("nan")


def test_footpoint_is_the_bottom_centre_of_the_box_as_fractions_of_the_frame() -> None:
    boxes = [TrackedBox(1, 100, 50, 300, 400, 0.9, 0), TrackedBox(2, 0, 0, 800, 600, 0.9, 0)]
    assert footpoints(boxes, 800, 600).tolist() == [[0.25, 400 / 600], [0.5, 1.0]]
    assert footpoints([], 800, 600).shape == (0, 2)


def test_ground_points_are_lat_lon_and_nan_without_a_ground_position() -> None:
    geo = GeoPosition(lat=47.1, lon=8.2, uncertainty_m=2.0, source="mavlink")
    boxes = [TrackedBox(1, 0, 0, 10, 10, 0.9, 0, geo=geo), TrackedBox(2, 0, 0, 10, 10, 0.9, 0)]
    points = ground_points(boxes)
    assert points[0].tolist() == [47.1, 8.2] and np.isnan(points[1]).all()
    assert np.array_equal(positions(boxes, Space.GEO, 10, 10), points, equal_nan=True)


def test_zone_contains_points_inside_and_on_its_edge_never_unknown_ones() -> None:
    zone = ZoneShape(Zone(name="z", points=[(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]))
    points = np.array([[0.4, 0.4], [0.6, 0.4], [0.7, 0.4], [NAN, NAN]])
    assert zone.contains(points).tolist() == [True, True, False, False]
    assert zone.contains(np.zeros((0, 2))).tolist() == []


def test_right_of_a_to_b_is_the_right_hand_seen_from_a_in_the_picture() -> None:
    # a→b points right across the picture; y grows downwards, so the right-hand side is the lower half.
    line = LineShape(Line(name="l", points=((0.1, 0.5), (0.9, 0.5))))
    below, above, on = [0.5, 0.8], [0.5, 0.2], [0.5, 0.5]
    assert line.sides(np.array([below, above, on, [NAN, NAN]])).tolist() == [RIGHT, LEFT, ON, ON]


def test_right_of_a_to_b_is_the_right_hand_seen_from_a_on_the_map() -> None:
    # a→b heads east (same lat, lon growing): the right-hand side is the south (lower latitude).
    line = LineShape(Line(name="l", space=Space.GEO, points=((47.0, 8.0), (47.0, 8.1))))
    south, north = [46.99, 8.05], [47.01, 8.05]
    assert line.sides(np.array([south, north])).tolist() == [RIGHT, LEFT]
    # a→b heads north: east is on the right.
    line = LineShape(Line(name="l", space=Space.GEO, points=((47.0, 8.0), (47.1, 8.0))))
    assert line.sides(np.array([[47.05, 8.01], [47.05, 7.99]])).tolist() == [RIGHT, LEFT]


def test_a_move_crosses_the_segment_only_between_its_ends() -> None:
    line = LineShape(Line(name="l", points=((0.4, 0.5), (0.6, 0.5))))
    assert line.crossed((0.5, 0.4), (0.5, 0.6))
    assert not line.crossed((0.8, 0.4), (0.8, 0.6))  # past the end of the segment: round it, not across
