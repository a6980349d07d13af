"""The alert lifecycle of each rule: one situation, one alert — `start`, `update`s while it changes, `end` when it
clears — and a cooldown after the end, during which the same rule starts no new alert.

What a situation is, per rule kind (chosen to read like a Frigate review item or a DeepStream analytics event:
a burst of activity is one alert, not one per object or per frame):

- enter / exit / cross are instantaneous: an object entering the zone (confirmed in, after the zone's min time
  and frames), leaving it (confirmed out, after the inertia: seen outside, or gone), crossing the line in the
  rule's direction. The first one starts the alert; further objects doing the same while it is open join it (an
  `update` each frame someone joins), so a group walking in together is one alert. It ends `HOLD_S` after the
  last object joined. A cross rule with direction `any` keeps `in` and `out` apart: two situations, two alerts,
  each with its own direction and cooldown. Cross alerts carry the line's running counts per direction.
- loiter: the objects whose current visit of the zone is longer than `duration_s`. Starts with the first, `update`
  as objects join or leave that set, ends when none is left.
- crowd: at least `min_count` objects in the zone without a break for `duration_s` starts it; `update` whenever
  the objects in the zone change (the count with them); ends as soon as fewer than `min_count` are in.
- inside (a geofence, in either space): while any matching object is in the zone; `update` as objects join or
  leave; ends when the zone is empty.

Objects whose tracks are lost leave zones after the inertia, which ends their part here like any exit. The
objects of a message are as last seen; `end` carries the situation's objects at the moment it cleared (for
enter/exit/cross: the objects that did it; for the others: those still matching, usually none).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from edge.rules.crossing import Crossing
from edge.rules.membership import EPSILON_S, Transitions, ZoneMembership
from edge.rules.objects import ObjectRegistry, SeenObject
from smarteye.wire.messages import Alert, AlertObject, AlertState
from smarteye.wire.rules import Direction, Rule, RuleKind

HOLD_S = 5.0
"""An enter/exit/cross alert ends this long after its last object joined: objects within it make one alert."""


@dataclass(slots=True)
class Scene:
    """What the rules know after one frame: objects, each zone's members and changes, each line's crossings."""

    now: float
    objects: ObjectRegistry
    departed: dict[int, SeenObject]  # forgotten in this frame: gone for good, shown as last seen
    zones: dict[str, ZoneMembership]
    zone_changes: dict[str, Transitions]
    crossings: dict[str, list[Crossing]]
    line_counts: dict[str, dict[str, int]]


@dataclass(slots=True)
class Situation:
    """One open alert."""

    alert_id: str
    start_time: float
    version: int  # of the rules that started it
    direction: Direction | None = None
    seq: int = 0
    members: dict[int, AlertObject] = field(default_factory=dict)
    count: int = 0
    last_join: float = 0.0


class AlertWriter:
    """Turns a situation's changes into numbered Alert messages of one stream."""

    def __init__(self, node: str, stream: str) -> None:
        self.node, self.stream = node, stream

    def write(
        self, rule: Rule, situation: Situation, state: AlertState, now: float, line_counts: dict[str, int] | None
    ) -> Alert:
        alert = Alert(
            node=self.node, id=f"{situation.alert_id}:{situation.seq}", alert_id=situation.alert_id,
            seq=situation.seq, state=state, stream=self.stream, rule=rule.name, rule_kind=rule.kind,
            severity=rule.severity, zone=rule.zone, line=rule.line, direction=situation.direction,
            objects=list(situation.members.values()), count=situation.count,
            line_counts=dict(line_counts) if line_counts is not None else None, capture_time=now,
            start_time=situation.start_time, end_time=now if state is AlertState.END else None,
            publish_time=time.time(), rules_version=situation.version,
        )  # fmt: skip
        situation.seq += 1
        return alert


class Watch:
    """The situations of one rule; subclasses say when one starts, changes and ends."""

    def __init__(self, rule: Rule, writer: AlertWriter) -> None:
        self.rule, self.writer = rule, writer
        self.open: dict[Direction | None, Situation] = {}
        self._quiet_until: dict[Direction | None, float] = {}

    def step(self, scene: Scene, version: int) -> list[Alert]:
        raise NotImplementedError

    def close(self, now: float) -> list[Alert]:
        """End every open situation (the rule was removed or changed, or the node stops)."""
        alerts = [self.writer.write(self.rule, s, AlertState.END, now, None) for s in self.open.values()]
        self.open.clear()
        return alerts

    # -- shared steps --------------------------------------------------------------------------
    def _cooling(self, key: Direction | None, now: float) -> bool:
        return now < self._quiet_until.get(key, float("-inf"))

    def _open(self, key: Direction | None, now: float, version: int) -> Situation:
        situation = Situation(str(uuid.uuid4()), now, version, direction=key)
        self.open[key] = situation
        return situation

    def _end(self, key: Direction | None, scene: Scene) -> Alert:
        situation = self.open.pop(key)
        self._quiet_until[key] = scene.now + self.rule.cooldown_s
        return self._message(situation, AlertState.END, scene)

    def _message(self, situation: Situation, state: AlertState, scene: Scene) -> Alert:
        counts = scene.line_counts.get(self.rule.line) if self.rule.line is not None else None
        return self.writer.write(self.rule, situation, state, scene.now, counts)

    def _describe(self, scene: Scene, track_id: int, previous: AlertObject | None = None) -> AlertObject | None:
        """The object as last seen, with its time in the rule's zone; `previous` once it is forgotten."""
        seen = scene.objects.get(track_id) or scene.departed.get(track_id)
        if seen is None:
            return previous
        zone = scene.zones.get(self.rule.zone) if self.rule.zone is not None else None
        in_zone = None
        if zone is not None:
            in_zone = zone.visit_s(track_id) if zone.is_in(track_id) else zone.total_s(track_id)
        return seen.describe(in_zone)

    def _refresh(self, situation: Situation, scene: Scene, track_ids: list[int]) -> None:
        """Set the situation's objects to `track_ids`, each as last seen."""
        members = {}
        for track_id in track_ids:
            described = self._describe(scene, track_id, situation.members.get(track_id))
            if described is not None:
                members[track_id] = described
        situation.members = members
        situation.count = len(members)


class InstantWatch(Watch):
    """enter, exit and cross: objects doing it join the open alert, which ends HOLD_S after the last one."""

    def _joining(self, scene: Scene) -> dict[Direction | None, list[int]]:
        rule = self.rule
        if rule.kind is RuleKind.CROSS:
            joining: dict[Direction | None, list[int]] = {}
            for crossing in scene.crossings.get(rule.line or "", []):
                if rule.direction in (Direction.ANY, crossing.direction):
                    joining.setdefault(crossing.direction, []).append(crossing.track_id)
            return joining
        changes = scene.zone_changes.get(rule.zone or "")
        if changes is None:
            return {}
        track_ids = changes.entered if rule.kind is RuleKind.ENTER else changes.left
        return {None: list(track_ids)} if track_ids else {}

    def step(self, scene: Scene, version: int) -> list[Alert]:
        alerts = []
        for key, track_ids in self._joining(scene).items():
            situation = self.open.get(key)
            if situation is None:
                if self._cooling(key, scene.now):
                    continue  # the same situation again within the cooldown: deduplicated
                situation = self._open(key, scene.now, version)
            self._refresh(situation, scene, [*situation.members, *(t for t in track_ids if t not in situation.members)])
            situation.last_join = scene.now
            state = AlertState.START if situation.seq == 0 else AlertState.UPDATE
            alerts.append(self._message(situation, state, scene))
        for key, situation in list(self.open.items()):
            if scene.now - situation.last_join >= HOLD_S - EPSILON_S:
                self._refresh(situation, scene, list(situation.members))
                alerts.append(self._end(key, scene))
        return alerts


class StateWatch(Watch):
    """loiter, crowd and inside: an alert open for as long as a condition holds on the zone's objects."""

    def _matching(self, zone: ZoneMembership, scene: Scene) -> tuple[bool, list[int]]:
        """Whether the situation holds now, and its objects."""
        raise NotImplementedError

    def step(self, scene: Scene, version: int) -> list[Alert]:
        zone = scene.zones.get(self.rule.zone or "")
        if zone is None:
            return []
        active, track_ids = self._matching(zone, scene)
        situation = self.open.get(None)
        if situation is None:
            if not active or self._cooling(None, scene.now):
                return []
            situation = self._open(None, scene.now, version)
            self._refresh(situation, scene, track_ids)
            return [self._message(situation, AlertState.START, scene)]
        before = set(situation.members)
        self._refresh(situation, scene, track_ids)
        if not active:
            return [self._end(None, scene)]
        if set(situation.members) != before:
            return [self._message(situation, AlertState.UPDATE, scene)]
        return []


class LoiterWatch(StateWatch):
    def _matching(self, zone: ZoneMembership, scene: Scene) -> tuple[bool, list[int]]:
        loitering = [t for t in zone.members if zone.visit_s(t) >= self.rule.duration_s - EPSILON_S]
        return bool(loitering), loitering


class CrowdWatch(StateWatch):
    def __init__(self, rule: Rule, writer: AlertWriter) -> None:
        super().__init__(rule, writer)
        self._since: float | None = None  # when the zone last reached min_count

    def _matching(self, zone: ZoneMembership, scene: Scene) -> tuple[bool, list[int]]:
        members = zone.members
        if len(members) < self.rule.min_count:
            self._since = None
            return False, members
        if self._since is None:
            self._since = scene.now
        return scene.now - self._since >= self.rule.duration_s - EPSILON_S, members


class InsideWatch(StateWatch):
    def _matching(self, zone: ZoneMembership, scene: Scene) -> tuple[bool, list[int]]:
        members = zone.members
        return bool(members), members


WATCHES: dict[RuleKind, type[Watch]] = {
    RuleKind.ENTER: InstantWatch,
    RuleKind.EXIT: InstantWatch,
    RuleKind.CROSS: InstantWatch,
    RuleKind.LOITER: LoiterWatch,
    RuleKind.CROWD: CrowdWatch,
    RuleKind.INSIDE: InsideWatch,
}


def watch_for(rule: Rule, writer: AlertWriter) -> Watch:
    return WATCHES[rule.kind](rule, writer)
