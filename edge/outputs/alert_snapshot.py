"""The picture of an alert: the frame it started on with the rule's zone or line and the alert's objects drawn.

Drawn on a downscaled copy (the frame's own picture is still to be drawn on by the video sink), at the size of
event snapshots (`snapshots.max_width`), and JPEG-encoded for the MQTT spool. Zones and lines in image space are
drawn where the rule sees them; a geofence (geo space) has no place in the picture, so only its objects are boxed.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.config.node import SnapshotConfig
from edge.outputs.video.annotate import draw_label
from smarteye.wire.messages import Alert
from smarteye.wire.rules import Direction, RuleSet, Severity, Space

SEVERITY_COLOURS: dict[Severity, tuple[int, int, int]] = {  # BGR
    Severity.INFO: (255, 160, 0),  # blue
    Severity.WARNING: (0, 160, 255),  # orange
    Severity.CRITICAL: (0, 0, 255),  # red
}
OBJECT_COLOUR = (255, 255, 255)
TEXT_BACKGROUND = (32, 32, 32)
ZONE_FILL_ALPHA = 0.25
FONT = cv2.FONT_HERSHEY_SIMPLEX


def alert_snapshot(image: np.ndarray, alert: Alert, rules: RuleSet | None, settings: SnapshotConfig) -> bytes:
    """The JPEG of `alert` on `image` (which is left untouched)."""
    height, width = image.shape[:2]
    scale = min(1.0, settings.max_width / width)
    if scale < 1.0:  # the resize makes the copy
        picture = cv2.resize(image, (settings.max_width, round(height * scale)), interpolation=cv2.INTER_AREA)
    else:
        picture = image.copy()
    draw_alert(picture, alert, rules, scale)
    ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, settings.quality])
    if not ok:
        raise ValueError("JPEG encoding of the alert snapshot failed")
    return jpeg.tobytes()


def draw_alert(picture: np.ndarray, alert: Alert, rules: RuleSet | None, scale: float = 1.0) -> None:
    """Draw onto `picture`: the zone or line (image space), the objects (boxes are in pixels of the frame, times
    `scale`), and a caption naming the rule."""
    height, width = picture.shape[:2]
    colour = SEVERITY_COLOURS[alert.severity]
    thickness = max(2, round(width / 320))
    size = np.array([width, height], dtype=float)
    zone = next((z for z in rules.zones if z.name == alert.zone), None) if rules and alert.zone else None
    line = next((li for li in rules.lines if li.name == alert.line), None) if rules and alert.line else None
    if zone is not None and zone.space is Space.IMAGE:
        corners = np.round(np.array(zone.points) * size).astype(np.int32)
        fill = picture.copy()
        cv2.fillPoly(fill, [corners], colour)
        cv2.addWeighted(fill, ZONE_FILL_ALPHA, picture, 1 - ZONE_FILL_ALPHA, 0, dst=picture)
        cv2.polylines(picture, [corners], True, colour, thickness, cv2.LINE_AA)
    if line is not None and line.space is Space.IMAGE:
        a, b = (np.array(p) * size for p in line.points)
        cv2.line(picture, _pt(a), _pt(b), colour, thickness, cv2.LINE_AA)
        rule = next((r for r in rules.rules if r.name == alert.rule), None) if rules else None
        direction = alert.direction or (rule.direction if rule is not None else Direction.ANY)
        _direction_arrows(picture, a, b, direction, colour, thickness)
    for obj in alert.objects:
        box = obj.box
        top_left = _pt(np.array([box.x1, box.y1]) * scale)
        cv2.rectangle(picture, top_left, _pt(np.array([box.x2, box.y2]) * scale), OBJECT_COLOUR, thickness,
                      cv2.LINE_AA)  # fmt: skip
        _label(picture, f"{obj.label} #{obj.track_id}", top_left, width)
    where = alert.zone or alert.line or ""
    _label(picture, f"{alert.rule}: {alert.rule_kind.value} {where} ({alert.severity.value})", (0, 0), width,
           inside=True)  # fmt: skip


def _direction_arrows(picture: np.ndarray, a: np.ndarray, b: np.ndarray, direction: Direction,
                      colour: tuple[int, int, int], thickness: int) -> None:  # fmt: skip
    """Arrows across the middle of a→b showing the way that counts: `in` goes from the right of a→b (seen from a
    looking at b, y down) to its left, `out` the other way, `any` both."""
    d = b - a
    length = float(np.hypot(*d))
    if length == 0:
        return
    left = np.array([d[1], -d[0]]) / length  # (dy, -dx): the left-hand normal on a y-down picture
    reach = max(12.0, 0.15 * length)
    middle = (a + b) / 2
    ways = {Direction.IN: [left], Direction.OUT: [-left], Direction.ANY: [left, -left]}[direction]
    for way in ways:
        cv2.arrowedLine(picture, _pt(middle - way * reach), _pt(middle + way * reach), colour, thickness,
                        cv2.LINE_AA, tipLength=0.35)  # fmt: skip


def _label(picture: np.ndarray, text: str, anchor: tuple[int, int], width: int, inside: bool = False) -> None:
    """White text on a dark band above the anchor (below it when there is no room, or `inside`)."""
    draw_label(picture, text, anchor, TEXT_BACKGROUND, max(0.4, min(1.0, width / 960)), inside)


def _pt(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))
