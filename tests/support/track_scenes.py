"""Constructed track sequences for the rules tests: objects placed by their footpoint, frames at 10 fps."""

from __future__ import annotations

from collections.abc import Iterable

from edge.frame import Frame
from edge.rules.stage import RulesStage
from edge.track.tracker import TrackedBox
from smarteye.wire.messages import Alert, GeoPosition
from smarteye.wire.rules import RuleSet

NAMES = {0: "person", 2: "car"}
W, H = 1000, 1000
T0 = 1_700_000_000.0


def at(
    track_id: int, x: float, y: float, *, cls: int = 0, score: float = 0.9, side_px: float = 40.0,
    geo: tuple[float, float] | None = None, size_m: float | None = None,
) -> TrackedBox:  # fmt: skip
    """A box whose footpoint is at (x, y), fractions of the frame."""
    position = GeoPosition(lat=geo[0], lon=geo[1], uncertainty_m=1.0, source="mavlink") if geo else None
    return TrackedBox(
        track_id, x * W - side_px / 2, y * H - 2 * side_px, x * W + side_px / 2, y * H, score, cls,
        geo=position, size_m=size_m,
    )  # fmt: skip


def frame(t: float, boxes: Iterable[TrackedBox] = ()) -> Frame:
    f = Frame("cam", round(t * 10), capture_time=T0 + t, pts=t, width=W, height=H)
    f.tracks = list(boxes)
    return f


def stage(rules: dict | RuleSet | None, forget_after_s: float = 2.0) -> RulesStage:
    ruleset = RuleSet.model_validate(rules) if isinstance(rules, dict) else rules
    return RulesStage("node1", "cam", NAMES, ruleset, forget_after_s)


def run(rules_stage: RulesStage, start: float, stop: float, boxes_at) -> list[Alert]:
    """Frames every 0.1 s from `start` to `stop` (inclusive); `boxes_at(t)` gives each frame's tracks."""
    alerts = []
    for tick in range(round(start * 10), round(stop * 10) + 1):
        t = tick / 10
        alerts += rules_stage.process(frame(t, boxes_at(t))).alerts
    return alerts


def summary(alerts: list[Alert]) -> list[tuple[str, float, list[int]]]:
    """(state, time since T0, track ids) per message, the shape most assertions compare."""
    return [(a.state.value, round(a.capture_time - T0, 3), sorted(o.track_id for o in a.objects)) for a in alerts]
