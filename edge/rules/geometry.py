"""Where objects are, and the shapes they are tested against: footpoints, zones (prepared shapely polygons) and
lines (side of line, segment crossed), in the picture or on the map.

Positions are arrays of (N, 2) points in the space of the shape: image (x, y) as fractions of the frame, origin
top-left, y down; geo (lat, lon) in degrees. A row of NaN is an object without a position in that space (no
ground position): it is in no zone and on no side of any line.

Side of a line a→b: the sign of the cross product (b - a) × (p - a), computed on the coordinates in the order the
wire contract gives them. Positive is the right-hand side seen from a looking at b, in both spaces: in the picture
y points down (a mirror of the usual maths axes), and on the map the first coordinate is the latitude (north) and
the second the longitude (east), which is the same mirror. Geofences are small, so containment and sides are
taken in degrees directly: scaling the longitude axis by cos(lat) changes neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from edge.track.tracker import TrackedBox
from smarteye.wire.rules import Line, Space, Zone

RIGHT, LEFT, ON = 1, -1, 0


def footpoints(boxes: Sequence[TrackedBox], width: int, height: int) -> np.ndarray:
    """Bottom-centre of each box as fractions of the frame: where an object stands in the picture."""
    points = np.array([[(b.x1 + b.x2) / 2, b.y2] for b in boxes], dtype=float).reshape(-1, 2)
    return points / np.array([max(width, 1), max(height, 1)], dtype=float)


def ground_points(boxes: Sequence[TrackedBox]) -> np.ndarray:
    """(lat, lon) of each box's footpoint on the ground; NaN where the object has no ground position."""
    nan = float("nan")
    rows = [[b.geo.lat, b.geo.lon] if b.geo is not None else [nan, nan] for b in boxes]
    return np.array(rows, dtype=float).reshape(-1, 2)


def positions(boxes: Sequence[TrackedBox], space: Space, width: int, height: int) -> np.ndarray:
    return ground_points(boxes) if space is Space.GEO else footpoints(boxes, width, height)


def _known(points: np.ndarray) -> np.ndarray:
    return ~np.isnan(points).any(axis=1)


class ZoneShape:
    """A zone's polygon, prepared once so testing every object of every frame is cheap (vectorised)."""

    def __init__(self, zone: Zone) -> None:
        self.space = zone.space
        self.polygon = Polygon(zone.points)
        shapely.prepare(self.polygon)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Per point: inside the polygon or on its edge (an object standing on the edge is in)."""
        inside = np.zeros(len(points), dtype=bool)
        known = _known(points)
        if known.any():
            inside[known] = shapely.intersects_xy(self.polygon, points[known, 0], points[known, 1])
        return inside


class LineShape:
    """A line segment a→b: which side each point is on, and whether a move from p to q went across it."""

    def __init__(self, line: Line) -> None:
        self.space = line.space
        self.a = np.array(line.points[0], dtype=float)
        self.b = np.array(line.points[1], dtype=float)
        self.segment = LineString(line.points)
        shapely.prepare(self.segment)

    def sides(self, points: np.ndarray) -> np.ndarray:
        """RIGHT (+1), LEFT (-1) or ON (0, also for unknown positions) per point; see the module docstring."""
        d = self.b - self.a
        with np.errstate(invalid="ignore"):
            cross = d[0] * (points[:, 1] - self.a[1]) - d[1] * (points[:, 0] - self.a[0])
        sides = np.sign(np.nan_to_num(cross, nan=0.0)).astype(np.int8)
        return sides

    def crossed(self, p: Sequence[float], q: Sequence[float]) -> bool:
        """Whether the straight move p→q touches the segment (walking round its end is not a crossing)."""
        return bool(self.segment.intersects(LineString([tuple(p), tuple(q)])))
