"""Line crossings: direction from the side an object leaves to the side it reaches, running counts per
direction, no count for walking round the end, for flicker shorter than min_frames, or for filtered sightings."""

from __future__ import annotations

import numpy as np

from edge.rules.crossing import LineCounter
from smarteye.wire.rules import Direction, Line, ObjectFilter

# a→b runs left to right across the middle of the picture: the lower half is its right, so walking up is `in`.
LINE = Line(name="door", points=((0.3, 0.5), (0.7, 0.5)))


def _walk(counter: LineCounter, track: int, ys: list[float], x: float = 0.5, t0: float = 0.0, ok: bool = True):
    found = []
    for i, y in enumerate(ys):
        found += counter.observe(t0 + i / 10, [track], np.array([[x, y]]), np.array([ok]))
    return found


def test_direction_and_running_counts_per_direction() -> None:
    counter = LineCounter(LINE)
    up = _walk(counter, 1, [0.8, 0.7, 0.6, 0.4, 0.3])
    assert [(c.track_id, c.direction, c.time) for c in up] == [(1, Direction.IN, 0.3)]
    down = _walk(counter, 2, [0.2, 0.45, 0.55, 0.9], t0=1.0)
    assert [c.direction for c in down] == [Direction.OUT]
    _walk(counter, 3, [0.9, 0.1], t0=2.0)
    assert counter.counts == {"in": 2, "out": 1}


def test_walking_round_the_end_of_the_line_is_not_a_crossing() -> None:
    counter = LineCounter(LINE)
    assert _walk(counter, 1, [0.8, 0.6, 0.4, 0.2], x=0.9) == []
    # ...and the object is now on the left: coming back across the segment is an `out`.
    assert [c.direction for c in _walk(counter, 1, [0.3, 0.7], t0=1.0)] == [Direction.OUT]


def test_min_frames_on_the_new_side_ignores_a_box_flickering_across() -> None:
    counter = LineCounter(Line(name="door", points=LINE.points, filter=ObjectFilter(min_frames=3)))
    assert _walk(counter, 1, [0.55, 0.45, 0.55, 0.45, 0.45, 0.55, 0.55]) == []
    crossed = _walk(counter, 1, [0.45, 0.45, 0.45], t0=1.0)
    assert [c.direction for c in crossed] == [Direction.IN] and counter.counts["in"] == 1


def test_filtered_sightings_and_unknown_positions_change_nothing() -> None:
    counter = LineCounter(LINE)
    assert _walk(counter, 1, [0.8, 0.2], ok=False) == [] and len(counter) == 0
    _walk(counter, 1, [0.8])
    assert counter.observe(1.0, [1], np.array([[np.nan, np.nan]]), np.array([True])) == []
    assert [c.direction for c in _walk(counter, 1, [0.2], t0=2.0)] == [Direction.IN]
    counter.forget(1)
    assert len(counter) == 0
