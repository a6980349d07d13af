"""Boxes between detections: the latest detection's tracks moved to the video frame's time by each track's
velocity from its last two detections; never an older detection, nothing once detection went stale."""

from __future__ import annotations

import pytest

from edge.outputs.video.motion import MAX_HORIZON_S, STALE_S, TrackMotion
from edge.track.tracker import TrackedBox


def box(track_id: int, x: float, y: float, w: float = 20, h: float = 40, obb: bool = False) -> TrackedBox:
    oriented = (x + w / 2, y + h / 2, w, h, 0.3) if obb else None
    return TrackedBox(track_id, x, y, x + w, y + h, 0.9, 0, obb=oriented)


def edges(found: TrackedBox) -> tuple[float, float, float, float]:
    return (round(found.x1, 6), round(found.y1, 6), round(found.x2, 6), round(found.y2, 6))


def test_a_moving_track_is_extrapolated_to_the_frame_time_from_its_last_two_detections() -> None:
    motion = TrackMotion()
    motion.update(10.0, [box(1, 100, 50)])
    motion.update(10.5, [box(1, 110, 45)])  # centre: 20 px/s right, 10 px/s up
    (at_detection,) = motion.at(10.5)
    assert edges(at_detection) == (110, 45, 130, 85)  # the detection's own frame: its own box
    (later,) = motion.at(10.75)
    assert edges(later) == (115, 42.5, 135, 82.5)
    (earlier,) = motion.at(10.25)  # a video frame older than the detection (video behind): moved back
    assert edges(earlier) == (105, 47.5, 125, 87.5)


def test_a_track_seen_once_stays_where_it_was_and_each_track_has_its_own_velocity() -> None:
    motion = TrackMotion()
    motion.update(1.0, [box(1, 0, 0), box(2, 50, 50)])
    motion.update(2.0, [box(1, 10, 0), box(2, 50, 60), box(3, 200, 200)])
    found = {b.track_id: edges(b) for b in motion.at(2.5)}
    assert found == {1: (15, 0, 35, 40), 2: (50, 65, 70, 105), 3: (200, 200, 220, 240)}


def test_the_box_moves_with_its_centre_and_keeps_its_latest_size() -> None:
    """A detector's size jitter is not extrapolated: the box does not swell or shrink between detections."""
    motion = TrackMotion()
    motion.update(1.0, [box(1, 100, 100, w=20, h=40)])
    motion.update(1.5, [box(1, 96, 96, w=28, h=48)])  # same centre, bigger box
    (moved,) = motion.at(2.0)
    assert edges(moved) == (96, 96, 124, 144)


def test_the_frames_own_tracks_are_never_modified() -> None:
    motion = TrackMotion()
    first, second = box(1, 0, 0), box(1, 10, 0)
    motion.update(1.0, [first])
    motion.update(2.0, [second])
    (moved,) = motion.at(3.0)
    assert moved is not second and edges(second) == (10, 0, 30, 40) and edges(moved) == (20, 0, 40, 40)


def test_only_the_latest_detection_is_drawn_and_an_older_result_arriving_late_is_ignored() -> None:
    motion = TrackMotion()
    motion.update(5.0, [box(1, 0, 0)])
    motion.update(6.0, [box(2, 300, 300)])  # track 1 gone
    motion.update(5.5, [box(1, 5, 0)])  # late: ignored
    assert [b.track_id for b in motion.at(6.2)] == [2]
    assert motion.detection_time == 6.0


def test_prediction_is_capped_and_stale_detections_draw_nothing() -> None:
    motion = TrackMotion()
    motion.update(0.0, [box(1, 0, 0)])
    motion.update(1.0, [box(1, 100, 0)])  # 100 px/s
    (capped,) = motion.at(1.0 + MAX_HORIZON_S + 0.5)
    assert capped.x1 == pytest.approx(100 + 100 * MAX_HORIZON_S)
    assert motion.at(1.0 + STALE_S + 0.1) == []
    motion.clear()
    assert motion.at(1.0) == []


def test_an_oriented_box_moves_with_its_hull_and_keeps_its_size_and_angle() -> None:
    motion = TrackMotion()
    motion.update(0.0, [box(7, 0, 0, obb=True)])
    motion.update(1.0, [box(7, 30, 20, obb=True)])
    (moved,) = motion.at(2.0)
    assert moved.obb is not None
    cx, cy, w, h, angle = moved.obb
    assert (cx, cy, w, h, angle) == pytest.approx((60 + 10, 40 + 20, 20, 40, 0.3))
    assert edges(moved) == (60, 40, 80, 80)


def test_no_detection_yet_draws_nothing() -> None:
    assert TrackMotion().at(123.0) == []
