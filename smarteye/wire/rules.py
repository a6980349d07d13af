"""Rules of one stream: zones and lines, in the picture or on the map, and the rules that watch them.

One model for every use: the edge's YAML (`sources[].rules`), the versioned configuration a supervisor
edits at the ground station and the station pushes to the edge (retained MQTT, per stream), and the
JSON Schema in docs/schemas/. A bad rule is refused here with a message that names the field, so
nothing half-valid ever reaches a running pipeline.

Coordinates:
- `image` space: (x, y) as fractions of the frame width and height, 0..1, origin top-left. For fixed
  cameras: the zone stays where it is drawn on the picture.
- `geo` space: (lat, lon) in WGS84 degrees. For drones and any geolocated stream: the zone stays on the
  ground however the camera moves, because each object's ground position is tested, not its pixels.

Where an object is: its footpoint, the bottom-centre of its box (in image space), or the ground position
of that footpoint (in geo space).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from smarteye.strict import StrictModel
from smarteye.wire.names import repeated, valid_name

Point = tuple[float, float]


class Space(StrEnum):
    IMAGE = "image"  # (x, y) fractions of the frame, 0..1
    GEO = "geo"  # (lat, lon) degrees, WGS84


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RuleKind(StrEnum):
    ENTER = "enter"  # an object enters the zone
    EXIT = "exit"  # an object that was in the zone leaves it
    CROSS = "cross"  # an object crosses the line (in a direction)
    LOITER = "loiter"  # an object stays in the zone longer than `duration_s`
    CROWD = "crowd"  # at least `min_count` objects in the zone for `duration_s`
    INSIDE = "inside"  # an object is inside the zone (a geofence: alert for as long as it is there)


class Direction(StrEnum):
    """Which way across a line from `a` to `b`: `in` is from its right-hand side to its left-hand side
    (seen from `a` looking at `b`, in the picture or on the map), `out` the other way."""

    IN = "in"
    OUT = "out"
    ANY = "any"


def _check_points(points: list[Point], space: Space) -> None:
    for index, (first, second) in enumerate(points):
        if space is Space.IMAGE and not (0.0 <= first <= 1.0 and 0.0 <= second <= 1.0):
            raise ValueError(
                f"point {index} ({first}, {second}) is outside 0..1 (image space is fractions of the frame)"
            )
        if space is Space.GEO and not (-90.0 <= first <= 90.0 and -180.0 <= second <= 180.0):
            raise ValueError(f"point {index} ({first}, {second}) is not a (lat, lon) in degrees")


class ObjectFilter(StrictModel):
    """Which tracked objects count for a zone or a line."""

    labels: list[str] | None = Field(
        None, title="Labels", description="Class names that count (e.g. person, car); unset: every class."
    )
    min_score: float = Field(0.0, ge=0, le=1, title="Minimum score", description="Detection score below which an "
                             "object does not count.")  # fmt: skip
    min_size_px: float = Field(
        0.0, ge=0, title="Minimum size (px)", description="Smaller side of the box, in pixels of the frame."
    )
    min_size_m: float | None = Field(
        None, ge=0, title="Minimum size (m)", description="Ground width of the object, in metres; geolocated streams "
        "only (objects without a ground size do not count when set).",
    )  # fmt: skip
    min_time_s: float = Field(
        0.0, ge=0, le=3600, title="Minimum time", description="Time an object must be inside before it counts as "
        "in (no flicker alerts).",
    )  # fmt: skip
    min_frames: int = Field(
        1, ge=1, le=1000, title="Minimum frames", description="Processed frames an object must be seen inside "
        "before it counts as in.",
    )  # fmt: skip
    inertia_frames: int = Field(
        3, ge=1, le=1000, title="Inertia", description="Processed frames an object must be seen outside (or missing) "
        "before it counts as having left, so one missed detection is not an exit.",
    )  # fmt: skip


class Zone(StrictModel):
    """A named polygon, in the picture or on the map."""

    name: Annotated[str, valid_name("zone name")] = Field(
        title="Name", description="Unique among the stream's zones and lines."
    )
    space: Space = Field(Space.IMAGE, title="Space", description="image: fractions of the frame; geo: lat/lon.")
    points: list[Point] = Field(min_length=3, max_length=256, title="Points", description="Polygon corners in "
                                "order; image (x, y) 0..1 or geo (lat, lon).")  # fmt: skip
    filter: ObjectFilter = Field(default_factory=ObjectFilter, title="Filter")

    @model_validator(mode="after")
    def _shape(self) -> Zone:
        from shapely.geometry import LineString, Polygon
        from shapely.validation import explain_validity

        _check_points(self.points, self.space)
        polygon = Polygon(self.points)
        if LineString(self.points).is_simple and polygon.area <= 0:
            raise ValueError("points: the polygon has no area (all points on one line?)")
        if not polygon.is_valid:
            raise ValueError(f"points: the polygon is not simple: {explain_validity(polygon)}")
        return self


class Line(StrictModel):
    """A named line segment from `a` to `b` that objects cross."""

    name: Annotated[str, valid_name("line name")] = Field(
        title="Name", description="Unique among the stream's zones and lines."
    )
    space: Space = Field(Space.IMAGE, title="Space", description="image: fractions of the frame; geo: lat/lon.")
    points: tuple[Point, Point] = Field(title="Points", description="a and b; `in` is crossing from the right of "
                                        "a→b to its left.")  # fmt: skip
    filter: ObjectFilter = Field(default_factory=ObjectFilter, title="Filter")

    @model_validator(mode="after")
    def _shape(self) -> Line:
        _check_points(list(self.points), self.space)
        if self.points[0] == self.points[1]:
            raise ValueError("points: a and b are the same point")
        return self


class Rule(StrictModel):
    """What raises an alert: a kind of situation on one zone or line."""

    name: Annotated[str, valid_name("rule name")] = Field(
        title="Name", description="Unique in the stream; alerts name it."
    )
    kind: RuleKind = Field(title="Kind")
    zone: str | None = Field(None, title="Zone", description="The zone it watches (enter, exit, loiter, crowd, "
                             "inside).")  # fmt: skip
    line: str | None = Field(None, title="Line", description="The line it watches (cross).")
    direction: Direction = Field(Direction.ANY, title="Direction", description="cross: which way counts.")
    duration_s: float = Field(
        0.0, ge=0, le=86400, title="Duration", description="loiter: time in the zone before the alert; crowd: time "
        "the crowd must last.",
    )  # fmt: skip
    min_count: int = Field(2, ge=1, le=10000, title="Minimum count", description="crowd: objects in the zone.")
    severity: Severity = Field(Severity.WARNING, title="Severity")
    cooldown_s: float = Field(
        30.0, ge=0, le=86400, title="Cooldown", description="After an alert ends, the same situation does not start "
        "a new one for this long (dedup of flapping situations).",
    )  # fmt: skip
    enabled: bool = Field(True, title="Enabled")

    @model_validator(mode="after")
    def _target(self) -> Rule:
        if self.kind is RuleKind.CROSS:
            if self.line is None or self.zone is not None:
                raise ValueError("a cross rule watches a line: set `line`, not `zone`")
        elif self.zone is None or self.line is not None:
            raise ValueError(f"a {self.kind.value} rule watches a zone: set `zone`, not `line`")
        if self.kind is RuleKind.LOITER and self.duration_s <= 0:
            raise ValueError("duration_s: a loiter rule needs a time in the zone above 0")
        return self


class ClipSettings(StrictModel):
    """The video kept with each alert: cut from the H.264 the node already encodes (no second encoder)."""

    enabled: bool = Field(True, title="Enabled", description="Attach a clip to every alert.")
    pre_s: float = Field(5.0, ge=0, le=30, title="Before", description="Seconds of video before the alert starts.")
    post_s: float = Field(5.0, ge=0, le=30, title="After", description="Seconds of video after the alert starts.")


class RuleSet(StrictModel):
    """Everything one stream's rules stage runs; `version` says which edit it is."""

    version: int = Field(0, ge=0, title="Version", description="0: the edge's own YAML; the ground station numbers "
                         "its edits from 1, and a pushed version replaces the YAML's.")  # fmt: skip
    zones: list[Zone] = Field(default_factory=list, max_length=64, title="Zones")
    lines: list[Line] = Field(default_factory=list, max_length=64, title="Lines")
    rules: list[Rule] = Field(default_factory=list, max_length=128, title="Rules")
    clip: ClipSettings = Field(default_factory=ClipSettings, title="Clips")
    counts_interval_s: float = Field(
        10.0, ge=1, le=3600, title="Counts interval", description="How often the zone and line counts are published "
        "(the numbers a supervisor charts).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _references(self) -> RuleSet:
        if twice := repeated([z.name for z in self.zones] + [line.name for line in self.lines]):
            raise ValueError(f"zone and line names must be unique; repeated: {twice}")
        if twice := repeated(r.name for r in self.rules):
            raise ValueError(f"rule names must be unique; repeated: {twice}")
        zones, lines = {z.name for z in self.zones}, {line.name for line in self.lines}
        for index, rule in enumerate(self.rules):
            if rule.zone is not None and rule.zone not in zones:
                raise ValueError(f"rules[{index}].zone: no zone named {rule.zone!r}")
            if rule.line is not None and rule.line not in lines:
                raise ValueError(f"rules[{index}].line: no line named {rule.line!r}")
        return self

    def spaces(self) -> set[Space]:
        return {z.space for z in self.zones} | {line.space for line in self.lines}

    def check_against(self, labels: set[str], geolocated: bool) -> None:
        """What only the stream knows: its model's class names and whether it has ground positions.
        Raises ValueError naming the field."""
        for kind, shapes in (("zones", self.zones), ("lines", self.lines)):
            for index, shape in enumerate(shapes):
                unknown = sorted(set(shape.filter.labels or ()) - labels)
                if unknown:
                    raise ValueError(f"{kind}[{index}].filter.labels: unknown label {', '.join(map(repr, unknown))}")
                if not geolocated and (shape.space is Space.GEO or shape.filter.min_size_m is not None):
                    what = "space: geo" if shape.space is Space.GEO else "filter.min_size_m"
                    raise ValueError(f"{kind}[{index}].{what} needs a geolocated stream (this stream has no `geo`)")
