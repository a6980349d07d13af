"""Line crossings with their direction, and running counts per direction.

Each object has a side of the line (see edge/rules/geometry.py: right or left of a→b), set by its first
sighting that passes the line's filter. A crossing counts when it is then seen on the other side for
`min_frames` frames and `min_time_s` seconds (so a box flickering across the line does not count when those are
raised), and the move from its last position on the old side to its first position on the new side went across
the segment itself: walking round the end of the line changes the side without counting. `in` is from the right
of a→b to its left, `out` the other way.

Sightings that fail the filter, objects without a position in the line's space, and missing frames change
nothing: the object keeps its side. The counts run from when the line was defined (a new rule set keeps them
for a line it leaves unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edge.rules.geometry import LEFT, ON, RIGHT, LineShape
from edge.rules.membership import EPSILON_S
from smarteye.wire.rules import Direction, Line


@dataclass(slots=True, frozen=True)
class Crossing:
    track_id: int
    direction: Direction
    time: float


@dataclass(slots=True)
class _Side:
    side: int  # RIGHT or LEFT: the side the object is established on
    anchor: tuple[float, float]  # its latest position on that side
    pending: int = ON  # the other side, while it is seen there but not yet confirmed
    pending_frames: int = 0
    pending_since: float = 0.0
    pending_from: tuple[float, float] = (0.0, 0.0)  # its first position on the other side


class LineCounter:
    """Crossings of one line by the objects of one stream."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.filter = line.filter
        self.shape = LineShape(line)
        self.counts: dict[str, int] = {Direction.IN.value: 0, Direction.OUT.value: 0}
        self._sides: dict[int, _Side] = {}

    def __len__(self) -> int:
        return len(self._sides)

    def observe(self, now: float, track_ids: Iterable[int], points: np.ndarray, passing: np.ndarray) -> list[Crossing]:
        """One frame: positions of the seen objects in the line's space and whether each passes the filter."""
        crossings = []
        sides = self.shape.sides(points)
        for track_id, side, point, ok in zip(track_ids, sides, points, passing, strict=True):
            if not ok or side == ON:
                continue
            where = (float(point[0]), float(point[1]))
            state = self._sides.get(track_id)
            if state is None:
                self._sides[track_id] = _Side(int(side), where)
            elif side == state.side:
                state.anchor, state.pending, state.pending_frames = where, ON, 0
            else:
                crossing = self._other_side(now, track_id, state, int(side), where)
                if crossing is not None:
                    crossings.append(crossing)
        return crossings

    def forget(self, track_id: int) -> None:
        self._sides.pop(track_id, None)

    def _other_side(self, now: float, track_id: int, state: _Side, side: int, where: tuple[float, float]):
        if state.pending != side:
            state.pending, state.pending_frames, state.pending_since, state.pending_from = side, 0, now, where
        state.pending_frames += 1
        if (
            state.pending_frames < self.filter.min_frames
            or now - state.pending_since < self.filter.min_time_s - EPSILON_S
        ):
            return None
        crossed = self.shape.crossed(state.anchor, state.pending_from)
        old = state.side
        state.side, state.anchor, state.pending, state.pending_frames = side, where, ON, 0
        if not crossed:
            return None
        direction = Direction.IN if (old, side) == (RIGHT, LEFT) else Direction.OUT
        self.counts[direction.value] += 1
        return Crossing(track_id, direction, now)
