"""Rules stage: judges each frame's tracked objects against the stream's rules — zones, lines, the alert lifecycle
of every rule, time in zone, counts — and puts the outcome on the frame (`alerts`, `counts`, each track's zones).

One per stream, always in the stream's stages: with no rules it only marks the frame as unjudged, and rules pushed
later (`apply`, from the MQTT thread) take effect at the next frame without a restart. A new set keeps the state
of what it leaves unchanged: a zone or line with the same definition keeps its objects and counts, a rule with the
same definition (and unchanged zone or line) keeps its open alert; alerts of rules that were removed or changed
end at the next frame. Counts are set on the frame every `counts_interval_s` of capture time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import numpy as np

from edge.frame import Frame
from edge.rules.crossing import Crossing, LineCounter
from edge.rules.geometry import ZoneShape, positions
from edge.rules.membership import EPSILON_S, Transitions, ZoneMembership
from edge.rules.objects import ObjectRegistry, passes
from edge.rules.situations import AlertWriter, Scene, Watch, watch_for
from edge.track.tracker import TrackedBox
from smarteye.wire.messages import Alert, ZoneCounts
from smarteye.wire.rules import ObjectFilter, RuleSet

log = logging.getLogger("edge.rules")


class _Compiled:
    """One rule set made ready to run: zone shapes and memberships, line counters, a watch per enabled rule."""

    def __init__(self, rules: RuleSet, writer: AlertWriter, previous: _Compiled | None) -> None:
        self.rules = rules
        old_zones = previous.zones if previous is not None else {}
        old_lines = previous.lines if previous is not None else {}
        old_watches = previous.watches if previous is not None else {}
        self.zones: dict[str, tuple[ZoneShape, ZoneMembership]] = {}
        for zone in rules.zones:
            kept = old_zones.get(zone.name)
            self.zones[zone.name] = kept if kept and kept[1].zone == zone else (ZoneShape(zone), ZoneMembership(zone))
        self.lines: dict[str, LineCounter] = {}
        for line in rules.lines:
            kept_line = old_lines.get(line.name)
            self.lines[line.name] = kept_line if kept_line and kept_line.line == line else LineCounter(line)
        self.watches: dict[str, Watch] = {}
        for rule in rules.rules:
            if not rule.enabled:
                continue
            kept_watch = old_watches.get(rule.name)
            target_kept = (
                (rule.zone is not None and old_zones.get(rule.zone) is self.zones[rule.zone])
                or (rule.line is not None and old_lines.get(rule.line) is self.lines[rule.line])
            )  # fmt: skip
            same = kept_watch is not None and kept_watch.rule == rule and target_kept
            self.watches[rule.name] = kept_watch if same and kept_watch else watch_for(rule, writer)
        kept_ids = {id(w) for w in self.watches.values()}
        self.dropped = [w for w in old_watches.values() if id(w) not in kept_ids]
        """Watches of the previous set that this one does not keep: their open alerts end."""

    @property
    def empty(self) -> bool:
        return not self.zones and not self.lines


class RulesStage:
    """The rules of one stream; see the module docstring."""

    name = "rules"

    def __init__(
        self,
        node: str,
        stream: str,
        names: Mapping[int, str],
        rules: RuleSet | None = None,
        forget_after_s: float = 2.0,
    ) -> None:
        self.node, self.stream = node, stream
        self.configured = rules
        """The rules of the edge's own config (YAML, version 0), to return to when pushed rules are cleared."""
        self.objects = ObjectRegistry(names, forget_after_s)
        self.failures = 0
        self._writer = AlertWriter(node, stream)
        self._lock = threading.Lock()
        self._applied = rules
        self._pending: RuleSet | None = rules
        self._error: str | None = None
        self._running: _Compiled | None = None
        self._counted_at: float | None = None

    # -- control (any thread) ------------------------------------------------------------------
    def apply(self, rules: RuleSet) -> None:
        """Run `rules` from the next frame on (already validated for this stream: see RuleSet.check_against)."""
        with self._lock:
            self._pending, self._applied, self._error = rules, rules, None

    def refuse(self, error: str) -> None:
        """Record why rules meant for this stream were not applied (the running rules stay as they are)."""
        with self._lock:
            self._error = error

    @property
    def version(self) -> int | None:
        """Version of the rules applied last (they judge the next frame); None while the stream has none."""
        with self._lock:
            return self._applied.version if self._applied is not None else None

    @property
    def error(self) -> str | None:
        """Why the last rules offered to this stream were refused; None once a set is applied."""
        with self._lock:
            return self._error

    # -- frame path (detection thread) ---------------------------------------------------------
    def process(self, frame: Frame) -> Frame:
        """Stage: the frame's alerts, its counts when due, and each track's zones and time in them."""
        alerts = self._take_pending(frame.capture_time)
        running = self._running
        frame.rules = running.rules if running is not None else None
        if running is not None and not running.empty:
            try:
                alerts.extend(self._judge(running, frame))
            except Exception:  # a rules bug must not stop the events of the stream
                self.failures += 1
                if self.failures == 1 or self.failures % 1000 == 0:
                    log.exception("stream %s: rules failed on frame %d (%d times)", self.stream, frame.seq,
                                  self.failures)  # fmt: skip
        frame.alerts.extend(alerts)
        return frame

    def end_all(self, now: float) -> list[Alert]:
        """End every open alert (the node stops); call from the detection thread or after it stopped."""
        if self._running is None:
            return []
        return [a for watch in self._running.watches.values() for a in watch.close(now)]

    def _take_pending(self, now: float) -> list[Alert]:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return []
        compiled = _Compiled(pending, self._writer, self._running)
        ended = [a for watch in compiled.dropped for a in watch.close(now)]
        self._running = compiled
        if compiled.empty:
            self.objects.objects.clear()  # nothing to judge them by: start afresh with the next set
        log.info("stream %s: rules version %d running (%d zones, %d lines, %d rules)", self.stream,
                 pending.version, len(compiled.zones), len(compiled.lines), len(compiled.watches))  # fmt: skip
        return ended

    def _judge(self, running: _Compiled, frame: Frame) -> list[Alert]:
        now, boxes = frame.capture_time, frame.tracks
        gone = self.objects.observe(now, boxes, frame.width, frame.height)
        ids = [b.track_id for b in boxes]
        points = {space: positions(boxes, space, frame.width, frame.height) for space in running.rules.spaces()}
        changes: dict[str, Transitions] = {}
        for name, (shape, membership) in running.zones.items():
            inside = shape.contains(points[shape.space]) & self._passing(membership.filter, boxes)
            changes[name] = membership.observe(now, ids, inside)
            changes[name].left.extend(tid for tid in gone if membership.forget(tid))
            for tid in changes[name].entered:
                self.objects.entered(tid, name)
        crossings: dict[str, list[Crossing]] = {}
        for name, counter in running.lines.items():
            crossings[name] = counter.observe(
                now, ids, points[counter.shape.space], self._passing(counter.filter, boxes)
            )
            for tid in gone:
                counter.forget(tid)
        memberships = {name: membership for name, (_, membership) in running.zones.items()}
        counts = {name: counter.counts for name, counter in running.lines.items()}
        scene = Scene(now, self.objects, gone, memberships, changes, crossings, counts)
        alerts = [a for watch in running.watches.values() for a in watch.step(scene, running.rules.version)]
        self._mark(running, boxes)
        self._count(running, frame)
        return alerts

    def _passing(self, rule_filter: ObjectFilter, boxes: list[TrackedBox]) -> np.ndarray:
        return np.array([passes(rule_filter, b, self.objects.label(b)) for b in boxes], dtype=bool).reshape(-1)

    def _mark(self, running: _Compiled, boxes: list[TrackedBox]) -> None:
        """Each track's zones now, zones entered and time in each (the events stage reports them)."""
        for box in boxes:
            seen = self.objects.get(box.track_id)
            if seen is None:
                continue
            box.zones = []
            for name, (_, membership) in running.zones.items():
                if membership.is_in(box.track_id):
                    box.zones.append(name)
                total = membership.total_s(box.track_id)
                if total is not None:
                    seen.zone_time_s[name] = round(total, 3)
            box.entered_zones = list(seen.entered_zones)
            box.zone_time_s = dict(seen.zone_time_s)

    def counts(self, now: float) -> ZoneCounts | None:
        """Objects in each zone now and crossings per line so far, as of the last frame judged (read it on the
        detection thread); None while no zone or line runs."""
        running = self._running
        if running is None or running.empty:
            return None
        return ZoneCounts(
            node=self.node, stream=self.stream,
            zones={name: len(membership.members) for name, (_, membership) in running.zones.items()},
            lines={name: dict(counter.counts) for name, counter in running.lines.items()},
            rules_version=running.rules.version, time=now,
        )  # fmt: skip

    def _count(self, running: _Compiled, frame: Frame) -> None:
        """Every counts interval (capture time): the counts go on the frame for the alert sink."""
        now, last = frame.capture_time, self._counted_at
        if last is not None and last <= now < last + running.rules.counts_interval_s - EPSILON_S:
            return
        self._counted_at = now
        frame.counts = self.counts(now)
