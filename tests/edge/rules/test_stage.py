"""The rules stage on the frame: filters, what each track carries for the events, counts every interval,
rule sets swapped between frames (from another thread) keeping what they leave unchanged, bounded state."""

from __future__ import annotations

import threading

from edge.config.tracking import EventsConfig
from edge.track.lifecycle import EventLifecycle
from smarteye.wire.rules import RuleSet
from tests.support.track_scenes import NAMES, T0, at, frame, run, stage, summary

YARD = {"name": "yard", "points": [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]}
GATE = {"name": "gate", "points": [(0.6, 0.2), (0.9, 0.2), (0.9, 0.6), (0.6, 0.6)]}
DOOR = {"name": "door", "points": [(0.3, 0.5), (0.7, 0.5)]}
INSIDE, OUTSIDE = (0.4, 0.4), (0.8, 0.8)


def test_no_rules_judges_nothing() -> None:
    rules = stage(None)
    judged = rules.process(frame(0.0, [at(1, *INSIDE)]))
    assert judged.rules is None and judged.alerts == [] and judged.counts is None
    assert judged.tracks[0].zones == [] and rules.version is None and len(rules.objects) == 0


def test_filters_labels_score_and_size_in_pixels_and_metres() -> None:
    zones = [
        {**YARD, "name": "people", "filter": {"labels": ["person"], "min_score": 0.5, "min_size_px": 30}},
        {**YARD, "name": "big", "filter": {"min_size_m": 1.5}},
    ]
    rules = stage({"zones": zones})
    boxes = [
        at(1, *INSIDE, size_m=2.0),  # a person, 40 px, 2 m: in both
        at(2, *INSIDE, cls=2, size_m=1.0),  # a car: not a person, and too small on the ground
        at(3, *INSIDE, score=0.3),  # below the score, and without a ground size
        at(4, *INSIDE, side_px=20),  # too small in the picture
    ]
    judged = rules.process(frame(0.0, boxes))
    assert {b.track_id: b.zones for b in judged.tracks} == {1: ["people", "big"], 2: [], 3: [], 4: []}


def test_tracks_carry_their_zones_entries_and_time_for_the_events_stage() -> None:
    rules = stage({"zones": [YARD, GATE]})
    lifecycle = EventLifecycle("node1", "cam", "yolov8n.pt", NAMES, EventsConfig(min_hits=1, update_interval_s=0))
    path = {0.0: OUTSIDE, 1.0: INSIDE, 3.0: (0.7, 0.4)}  # from outside into the yard, then into the gate

    def where(t: float):
        return path[max(k for k in path if k <= t)]

    events = []
    for tick in range(0, 51):
        judged = lifecycle.process(rules.process(frame(tick / 10, [at(1, *where(tick / 10))])))
        events += judged.events
    box = judged.tracks[0]
    # Out of the yard at 3.2 (3rd frame outside): its visit ran 1.0 .. 2.9; in the gate from 3.0 to 5.0.
    assert (box.zones, box.entered_zones, box.zone_time_s) == (["gate"], ["yard", "gate"], {"yard": 1.9, "gate": 2.0})
    assert [e.zones for e in events] == [[], ["yard"], ["yard", "gate"], ["gate"]]  # an update at every change
    assert events[-1].entered_zones == ["yard", "gate"] and events[-1].zone_time_s["yard"] == 1.9


def test_counts_every_interval_of_capture_time() -> None:
    rules = stage({"zones": [YARD], "lines": [DOOR], "counts_interval_s": 2})
    counted = []
    for tick in range(0, 51):
        t = tick / 10
        judged = rules.process(frame(t, [at(1, 0.5, 0.4 if t >= 1.0 else 0.7), at(2, *INSIDE)]))
        if judged.counts is not None:
            counted.append(judged.counts)
    assert [round(c.time - T0, 3) for c in counted] == [0.0, 2.0, 4.0]
    assert counted[0].zones == {"yard": 1} and counted[0].lines == {"door": {"in": 0, "out": 0}}
    assert counted[1].zones == {"yard": 2} and counted[1].lines == {"door": {"in": 1, "out": 0}}
    assert (counted[1].node, counted[1].stream, counted[1].rules_version) == ("node1", "cam", 0)


def test_a_new_set_keeps_what_it_leaves_unchanged_and_ends_the_alerts_of_what_it_changes() -> None:
    loiter = {"name": "loiter", "kind": "loiter", "zone": "yard", "duration_s": 1, "cooldown_s": 0}
    inside = {"name": "inside", "kind": "inside", "zone": "yard", "cooldown_s": 0}
    first = RuleSet.model_validate({"zones": [YARD], "lines": [DOOR], "rules": [loiter, inside]})
    rules = stage(first)
    alerts = run(rules, 0.0, 2.0, lambda t: [at(1, *INSIDE), at(2, 0.5, 0.4 if t >= 1.0 else 0.7)])
    # inside: 1 from the start, 2 joins at 1.0; loiter (rule order: first in a frame): 1 from 1.0, 2 from 2.0.
    assert summary(alerts) == [
        ("start", 0.0, [1]),
        ("start", 1.0, [1]),
        ("update", 1.0, [1, 2]),
        ("update", 2.0, [1, 2]),
    ]
    # Pushed: the same zone, line and loiter rule, the inside rule made critical, a new zone.
    pushed = RuleSet.model_validate({"version": 4, "zones": [YARD, GATE], "lines": [DOOR],
                                     "rules": [loiter, {**inside, "severity": "critical"}]})  # fmt: skip
    rules.apply(pushed)
    assert rules.version == 4 and rules.error is None
    judged = rules.process(frame(2.1, [at(1, *INSIDE), at(2, *INSIDE)]))
    assert judged.rules is pushed
    ended, started = judged.alerts  # the old inside alert ends, the new rule starts its own
    assert (ended.state.value, ended.rule, ended.rules_version) == ("end", "inside", 0)
    assert (started.state.value, started.rule, started.rules_version, started.severity.value) == (
        "start", "inside", 4, "critical")  # fmt: skip
    assert judged.counts is None  # the counts clock goes on
    # The loiter alert went on untouched (no end, no restart), the line kept its count.
    later = rules.process(frame(2.2, [at(1, *INSIDE)]))
    assert later.tracks[0].zone_time_s == {"yard": 2.2}
    rules.apply(RuleSet.model_validate({"version": 5, "zones": [YARD], "lines": [DOOR]}))
    ends = rules.process(frame(2.3, [at(1, *INSIDE)])).alerts
    assert sorted((a.rule, a.state.value, a.rules_version) for a in ends) == [
        ("inside", "end", 4),
        ("loiter", "end", 0),
    ]
    counts = rules.process(frame(10.0, [])).counts  # 10 s (the default interval) after the first counts
    assert counts is not None and counts.lines == {"door": {"in": 1, "out": 0}} and counts.rules_version == 5


def test_an_empty_set_stops_everything_and_refuse_keeps_the_running_rules() -> None:
    rules = stage({"zones": [YARD], "rules": [{"name": "r", "kind": "inside", "zone": "yard"}]})
    assert [a.state.value for a in rules.process(frame(0.0, [at(1, *INSIDE)])).alerts] == ["start"]
    rules.refuse("rules.zones[0].points: the polygon is not simple")
    assert rules.error == "rules.zones[0].points: the polygon is not simple" and rules.version == 0
    rules.apply(RuleSet())
    judged = rules.process(frame(0.1, [at(1, *INSIDE)]))
    assert [a.state.value for a in judged.alerts] == ["end"] and judged.tracks[0].zones == []
    assert rules.error is None and len(rules.objects) == 0


def test_state_is_dropped_when_objects_are_gone_so_nothing_grows_with_time() -> None:
    rules = stage({"zones": [YARD], "lines": [DOOR]}, forget_after_s=1.0)
    for tick in range(0, 600):  # a minute of new objects walking through, each one seen for 2 s
        t = tick / 10
        tid = tick // 20
        rules.process(frame(t, [at(tid, 0.4, 0.3 + (tick % 20) / 50)]))
    running = rules._running
    assert running is not None
    assert len(rules.objects) <= 2
    assert len(running.zones["yard"][1]) <= 2 and len(running.lines["door"]) <= 2
    assert running.lines["door"].counts == {"in": 0, "out": 30}


def test_apply_from_another_thread_while_frames_are_judged() -> None:
    sets = [RuleSet.model_validate({"version": v, "zones": [YARD], "rules": [
        {"name": f"r{v % 3}", "kind": "inside", "zone": "yard", "cooldown_s": 0}]}) for v in range(1, 200)]  # fmt: skip
    rules = stage(sets[0])
    pusher = threading.Thread(target=lambda: [rules.apply(s) for s in sets])
    pusher.start()
    alerts = []
    for tick in range(0, 400):
        alerts += rules.process(frame(tick / 10, [at(1, *INSIDE)])).alerts
    pusher.join()
    alerts += rules.process(frame(40.0, [at(1, *INSIDE)])).alerts
    assert rules.version == 199 and rules.failures == 0
    # Every alert that started ended or is the one still open, under the last set.
    open_ids = {a.alert_id for a in alerts if a.state.value == "start"} - {
        a.alert_id for a in alerts if a.state.value == "end"
    }
    assert len(open_ids) == 1
