"""Zone membership with its filters: in after min frames and min time, out after the inertia (seen outside or
missing), time in zone summed over visits, and no state kept for objects that never were in."""

from __future__ import annotations

import numpy as np

from edge.rules.membership import ZoneMembership
from smarteye.wire.rules import ObjectFilter, Zone

SQUARE = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]


def _zone(**filter_fields: object) -> ZoneMembership:
    return ZoneMembership(Zone(name="yard", points=SQUARE, filter=ObjectFilter(**filter_fields)))


def _see(zone: ZoneMembership, t: float, seen: dict[int, bool]):
    return zone.observe(t, list(seen), np.array(list(seen.values()), dtype=bool))


def test_in_after_min_frames_and_min_time_not_before() -> None:
    zone = _zone(min_frames=3, min_time_s=0.5)
    entered = [(t, _see(zone, t / 10, {1: True}).entered) for t in range(8)]
    # 3 frames are reached at t=0.2 but 0.5 s only at t=0.5: the later of the two.
    assert [t for t, ids in entered if ids] == [5]
    assert zone.members == [1] and zone.is_in(1)


def test_one_missed_frame_is_not_an_exit_inertia_frames_are() -> None:
    zone = _zone(inertia_frames=3)
    assert _see(zone, 0.0, {1: True}).entered == [1]
    assert _see(zone, 0.1, {}).left == []  # missing once
    assert _see(zone, 0.2, {1: False}).left == []  # outside once
    assert _see(zone, 0.3, {1: True}).entered == []  # back: still the same visit, no new entry
    changes = [_see(zone, t / 10, {1: False}).left for t in range(4, 7)]
    assert changes == [[], [], [1]]
    assert not zone.is_in(1) and zone.members == []


def test_a_flicker_shorter_than_min_frames_never_enters_and_leaves_no_state() -> None:
    zone = _zone(min_frames=3, inertia_frames=2)
    for t, inside in enumerate([True, True, False, False, True, False, False]):
        assert _see(zone, t / 10, {1: inside}).entered == []
    assert len(zone) == 0 and zone.total_s(1) is None


def test_time_in_zone_runs_from_the_first_sighting_inside_and_sums_visits() -> None:
    zone = _zone(min_time_s=1.0, inertia_frames=1)
    for t in range(0, 31):  # inside 0.0 .. 3.0 s
        _see(zone, t / 10, {1: True})
    assert zone.visit_s(1) == 3.0 and zone.total_s(1) == 3.0
    _see(zone, 3.1, {1: False})  # out (inertia 1)
    assert zone.visit_s(1) == 0.0 and zone.total_s(1) == 3.0
    for t in range(50, 71):  # second visit 5.0 .. 7.0 s, confirmed at 6.0
        _see(zone, t / 10, {1: True})
    assert zone.visit_s(1) == 2.0 and abs(zone.total_s(1) - 5.0) < 1e-9
    assert zone.forget(1) and zone.total_s(1) is None and len(zone) == 0


def test_members_are_listed_oldest_visit_first_and_a_forgotten_member_has_left() -> None:
    zone = _zone()
    _see(zone, 0.0, {2: True})
    _see(zone, 0.1, {1: True, 2: True})
    assert zone.members == [2, 1]
    assert zone.forget(2) and not zone.forget(99)
    assert zone.members == [1]
