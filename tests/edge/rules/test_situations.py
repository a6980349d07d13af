"""The alert lifecycle per rule kind on constructed track sequences: one situation, one alert (start, updates as
objects join or leave, end), the hold of instantaneous kinds, cooldown, directions and counts."""

from __future__ import annotations

from edge.rules.situations import HOLD_S
from smarteye.wire.rules import Direction, RuleKind, Severity
from tests.support.track_scenes import T0, at, run, stage, summary

YARD = {"name": "yard", "points": [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]}
DOOR = {"name": "door", "points": [(0.3, 0.5), (0.7, 0.5)]}  # lower half is the right of a→b: walking up is `in`
OUTSIDE, INSIDE = (0.8, 0.8), (0.4, 0.4)


def _rules(rule: dict, zone: dict | None = None, line: dict | None = None) -> dict:
    return {"zones": [zone or YARD], "lines": [line or DOOR], "rules": [{"name": "r", **rule}]}


def test_enter_objects_entering_together_are_one_alert_that_ends_after_the_hold() -> None:
    rules = stage(_rules({"kind": "enter", "zone": "yard", "severity": "critical", "cooldown_s": 0}))

    def tracks(t: float):
        return [at(1, *(INSIDE if t >= 1.0 else OUTSIDE)), at(2, *(INSIDE if t >= 1.5 else OUTSIDE))]

    alerts = run(rules, 0.0, 10.0, tracks)
    end_at = round(1.5 + HOLD_S, 3)
    assert summary(alerts) == [("start", 1.0, [1]), ("update", 1.5, [1, 2]), ("end", end_at, [1, 2])]
    start, update, end = alerts
    assert len({a.alert_id for a in alerts}) == 1 and [a.seq for a in alerts] == [0, 1, 2]
    assert start.id == f"{start.alert_id}:0" and end.id == f"{start.alert_id}:2"
    assert (start.rule, start.rule_kind, start.severity, start.zone, start.line) == (
        "r", RuleKind.ENTER, Severity.CRITICAL, "yard", None)  # fmt: skip
    assert (start.node, start.stream, start.rules_version, start.count, update.count) == ("node1", "cam", 0, 1, 2)
    assert start.start_time == end.start_time == T0 + 1.0 and end.end_time == T0 + end_at and start.end_time is None
    first = start.objects[0]
    assert (first.label, first.box.y2, first.box_norm.y2, first.time_in_zone_s) == ("person", 400, 0.4, 0.0)
    assert end.objects[0].time_in_zone_s == round(end_at - 1.0, 3)  # still in the zone: its visit so far


def test_cooldown_deduplicates_the_same_situation_after_the_end() -> None:
    rules = stage(_rules({"kind": "enter", "zone": "yard", "cooldown_s": 10}))
    entries = {1: 1.0, 2: 8.0, 3: 20.0}  # 2 enters during the cooldown after the first alert ended (at 6.0)

    def tracks(t: float):
        return [at(tid, *(INSIDE if t >= when else OUTSIDE)) for tid, when in entries.items()]

    alerts = run(rules, 0.0, 30.0, tracks)
    assert summary(alerts) == [("start", 1.0, [1]), ("end", 6.0, [1]), ("start", 20.0, [3]), ("end", 25.0, [3])]
    assert alerts[0].alert_id != alerts[2].alert_id


def test_exit_after_the_inertia_including_a_track_lost_inside() -> None:
    rules = stage(_rules({"kind": "exit", "zone": "yard", "cooldown_s": 0}, {**YARD, "filter": {"inertia_frames": 5}}))

    def tracks(t: float):
        walker = at(1, *(INSIDE if t < 1.0 else OUTSIDE))
        lost = [at(2, *INSIDE)] if t < 8.0 else []  # disappears inside the zone at 8.0
        return [walker, *lost]

    alerts = run(rules, 0.0, 15.0, tracks)
    # seen outside from 1.0: the 5th frame outside (1.4) is the exit; the lost track's 5th missing frame is 8.4.
    assert summary(alerts) == [("start", 1.4, [1]), ("end", 6.4, [1]), ("start", 8.4, [2]), ("end", 13.4, [2])]
    assert alerts[0].objects[0].time_in_zone_s == 0.9  # its whole visit, 0.0 .. 0.9


def test_cross_counts_every_crossing_alerts_per_direction_and_carries_running_counts() -> None:
    rules = stage(_rules({"kind": "cross", "line": "door", "cooldown_s": 0}))
    ups = {1: 1.0, 2: 2.0}  # walk up across the door at these times: `in`
    downs = {3: 1.5}  # walks down: `out`

    def tracks(t: float):
        boxes = [at(tid, 0.5, 0.4 if t >= when else 0.6) for tid, when in ups.items()]
        return boxes + [at(tid, 0.45, 0.6 if t >= when else 0.4) for tid, when in downs.items()]

    alerts = run(rules, 0.0, 10.0, tracks)
    by_direction = {d: [a for a in alerts if a.direction is d] for d in (Direction.IN, Direction.OUT)}
    assert summary(by_direction[Direction.IN]) == [("start", 1.0, [1]), ("update", 2.0, [1, 2]), ("end", 7.0, [1, 2])]
    assert summary(by_direction[Direction.OUT]) == [("start", 1.5, [3]), ("end", 6.5, [3])]
    assert by_direction[Direction.IN][0].alert_id != by_direction[Direction.OUT][0].alert_id
    assert by_direction[Direction.IN][0].line_counts == {"in": 1, "out": 0}
    assert by_direction[Direction.OUT][0].line_counts == {"in": 1, "out": 1}
    assert by_direction[Direction.IN][1].line_counts == {"in": 2, "out": 1}
    assert all(a.line == "door" and a.zone is None and a.objects[0].time_in_zone_s is None for a in alerts)


def test_cross_with_a_direction_ignores_the_other_way_but_still_counts_it() -> None:
    rules = stage(_rules({"kind": "cross", "line": "door", "direction": "out", "cooldown_s": 0}))
    alerts = run(rules, 0.0, 3.0, lambda t: [at(1, 0.5, 0.4 if t >= 1.0 else 0.6)])
    assert alerts == []
    alerts = run(rules, 3.1, 9.0, lambda t: [at(1, 0.5, 0.6)])
    assert summary(alerts) == [("start", 3.1, [1]), ("end", 8.1, [1])]
    assert alerts[0].line_counts == {"in": 1, "out": 1} and alerts[0].direction is Direction.OUT


def test_loiter_starts_after_duration_updates_as_loiterers_change_and_ends_when_none_loiters() -> None:
    rules = stage(_rules({"kind": "loiter", "zone": "yard", "duration_s": 3, "cooldown_s": 0}))
    stays = {1: (0.0, 6.0), 2: (1.0, 9.0), 3: (7.0, 8.0)}  # in the zone from..until; 3 never stays 3 s

    def tracks(t: float):
        return [at(tid, *(INSIDE if start <= t < stop else OUTSIDE)) for tid, (start, stop) in stays.items()]

    alerts = run(rules, 0.0, 12.0, tracks)
    # 1 loiters from 3.0, 2 from 4.0; 1 is out at 6.2 (3rd frame outside, default inertia), 2 at 9.2.
    assert summary(alerts) == [("start", 3.0, [1]), ("update", 4.0, [1, 2]), ("update", 6.2, [2]), ("end", 9.2, [])]
    assert alerts[0].objects[0].time_in_zone_s == 3.0 and alerts[0].count == 1 and alerts[-1].count == 0


def test_crowd_needs_min_count_for_duration_updates_on_count_changes_and_ends_below() -> None:
    rule = {"kind": "crowd", "zone": "yard", "min_count": 2, "duration_s": 2, "cooldown_s": 0}
    rules = stage(_rules(rule, {**YARD, "filter": {"inertia_frames": 1}}))
    stays = {1: (0.0, 10.0), 2: (0.5, 1.5), 3: (2.0, 8.0), 4: (5.0, 6.0)}  # 1+2 together only 1 s: no crowd

    def tracks(t: float):
        return [at(tid, *(INSIDE if start <= t < stop else OUTSIDE)) for tid, (start, stop) in stays.items()]

    alerts = run(rules, 0.0, 12.0, tracks)
    assert summary(alerts) == [
        ("start", 4.0, [1, 3]), ("update", 5.0, [1, 3, 4]), ("update", 6.0, [1, 3]), ("end", 8.0, [1]),
    ]  # fmt: skip
    assert [a.count for a in alerts] == [2, 3, 2, 1]


def test_inside_a_geofence_uses_ground_positions_and_objects_without_one_are_not_in() -> None:
    fence = {"name": "fence", "space": "geo", "points": [(47.0, 8.0), (47.0, 8.01), (47.01, 8.01), (47.01, 8.0)]}
    rules = stage({"zones": [fence], "rules": [{"name": "r", "kind": "inside", "zone": "fence", "cooldown_s": 0}]})

    def tracks(t: float):
        inside = at(1, 0.9, 0.9, geo=(47.005, 8.005)) if 1.0 <= t < 3.0 else at(1, 0.9, 0.9, geo=(46.9, 8.005))
        return [inside, at(2, 0.5, 0.5, geo=(46.9, 8.0)), at(3, 0.5, 0.5)]  # 2 outside, 3 has no ground position

    alerts = run(rules, 0.0, 5.0, tracks)
    assert summary(alerts) == [("start", 1.0, [1]), ("end", 3.2, [])]
    assert alerts[0].objects[0].geo is not None and alerts[0].objects[0].geo.lat == 47.005


def test_an_object_forgotten_while_still_in_the_zone_exits_with_its_last_box() -> None:
    # Inertia (30 frames = 3 s) longer than the time after which a lost object is forgotten (1 s).
    zone = {**YARD, "filter": {"inertia_frames": 30}}
    rules = stage(_rules({"kind": "exit", "zone": "yard", "cooldown_s": 0}, zone), forget_after_s=1.0)
    alerts = run(rules, 0.0, 8.0, lambda t: [at(7, *INSIDE)] if t < 1.0 else [])
    assert summary(alerts) == [("start", 2.0, [7]), ("end", 7.0, [7])]  # forgotten 1 s after its last sighting
    assert alerts[0].objects[0].box.y2 == 400 and alerts[0].objects[0].label == "person"
    assert len(rules.objects) == 0
