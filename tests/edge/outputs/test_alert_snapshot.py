"""Drawing an alert: a line's direction arrows point the way the rule counts, geofences are not drawn in the
picture, and the snapshot is a downscaled copy."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edge.config.node import SnapshotConfig
from edge.outputs.alert_snapshot import SEVERITY_COLOURS, alert_snapshot, draw_alert
from smarteye.wire.messages import Alert, AlertObject, AlertState, Box
from smarteye.wire.rules import Direction, Line, Rule, RuleKind, RuleSet, Severity, Space, Zone

SIZE = 400
COLOUR = SEVERITY_COLOURS[Severity.WARNING]


def cross_alert(direction: Direction | None) -> Alert:
    return Alert(
        node="n", id="c:0", alert_id="c", seq=0, state=AlertState.START, stream="cam", rule="gate",
        rule_kind=RuleKind.CROSS, severity=Severity.WARNING, line="gate", direction=direction, objects=[], count=1,
        capture_time=time.time(), start_time=time.time(), publish_time=time.time(), rules_version=0,
    )  # fmt: skip


def gate(direction: Direction) -> RuleSet:
    """A horizontal line drawn left to right across the middle: its left-hand side (seen from a towards b) is up."""
    return RuleSet(
        lines=[Line(name="gate", points=((0.1, 0.5), (0.9, 0.5)))],
        rules=[Rule(name="gate", kind=RuleKind.CROSS, line="gate", direction=direction)],
    )


def coloured(picture: np.ndarray, rows: slice) -> int:
    """Pixels of the alert's colour in a band beside the middle of the line."""
    band = picture[rows, SIZE // 2 - 20 : SIZE // 2 + 20].astype(int)
    return int((np.abs(band - np.array(COLOUR)).max(axis=2) < 40).sum())


@pytest.mark.parametrize(
    ("rule_direction", "alert_direction", "arrowhead"),
    [
        (Direction.IN, None, "up"),  # in: from the right of a→b to its left
        (Direction.OUT, None, "down"),
        (Direction.ANY, Direction.OUT, "down"),  # the way this object crossed, when the alert says it
        (Direction.ANY, None, "both"),
    ],
)
def test_a_lines_arrows_point_the_way_that_counts(
    rule_direction: Direction, alert_direction: Direction | None, arrowhead: str
) -> None:
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    draw_alert(picture, cross_alert(alert_direction), gate(rule_direction))
    assert coloured(picture, slice(SIZE // 2 - 1, SIZE // 2 + 2)) > 30  # the line itself
    # the arrows reach 0.15 of the line's 320 px each side of it (48 px); their heads sit at the far ends
    above, below = coloured(picture, slice(152, 172)), coloured(picture, slice(229, 249))
    if arrowhead == "up":
        assert above > 2 * below
    elif arrowhead == "down":
        assert below > 2 * above
    else:
        assert above == pytest.approx(below, rel=0.3)


def test_a_geofence_is_not_drawn_but_its_objects_are() -> None:
    rules = RuleSet(
        zones=[Zone(name="yard", space=Space.GEO, points=[(51.0, 7.0), (51.0, 7.01), (51.01, 7.01)])],
        rules=[Rule(name="yard", kind=RuleKind.INSIDE, zone="yard", severity=Severity.WARNING)],
    )
    person = AlertObject(track_id=3, label="person", score=0.8, box=Box(x1=100, y1=100, x2=200, y2=300),
                         box_norm=Box(x1=0.25, y1=0.25, x2=0.5, y2=0.75))  # fmt: skip
    alert = cross_alert(None).model_copy(update={"rule_kind": RuleKind.INSIDE, "zone": "yard", "line": None,
                                                 "rule": "yard", "objects": [person]})  # fmt: skip
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    draw_alert(picture, alert, rules)
    assert coloured(picture, slice(0, SIZE)) == 0  # nothing in the zone's colour
    assert picture[200, 100].min() > 200  # the person's box (white), left edge


def test_the_snapshot_is_a_downscaled_copy() -> None:
    image = np.full((480, 1280, 3), 50, np.uint8)
    original = image.copy()
    jpeg = alert_snapshot(image, cross_alert(None), gate(Direction.IN), SnapshotConfig(max_width=640, quality=90))
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 640, 3)
    assert np.array_equal(image, original)
