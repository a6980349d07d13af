"""Which objects are in a zone, frame by frame, with the zone's filters: an object counts as *in* only after it has
been seen inside (and passing the label/score/size filter) for `min_frames` frames and `min_time_s` seconds, and
as *out* only after `inertia_frames` frames seen outside, failing the filter, or missing, so one missed detection
is neither an exit nor a new entry.

Time in zone: a visit runs from the first sighting inside (the one that started the run that got confirmed) to
the latest sighting inside; an object's time in a zone is the sum of its visits. A run that never got confirmed
is not time in the zone. State per object is dropped when it is out and never was in, or when the object is
forgotten, so it stays bounded by the objects alive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from smarteye.wire.rules import Zone

EPSILON_S = 1e-6  # capture times are floats: 0.1 + 0.2 must count as 0.3


@dataclass(slots=True)
class Presence:
    """One object's relation to one zone."""

    inside: bool = False  # confirmed in
    run_start: float | None = None  # first sighting inside of the current visit (or candidate visit)
    run_frames: int = 0  # sightings inside in that run
    last_inside: float = 0.0
    out_frames: int = 0  # consecutive frames outside, failing the filter or missing, during a run
    past_s: float = 0.0  # time of the visits that ended

    def visit_s(self) -> float:
        return self.last_inside - self.run_start if self.inside and self.run_start is not None else 0.0

    def total_s(self) -> float:
        return self.past_s + self.visit_s()


@dataclass(slots=True)
class Transitions:
    """What changed in one frame: objects confirmed in, objects that left (in order)."""

    entered: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)


class ZoneMembership:
    """The objects in one zone; see the module docstring for the rules of in and out."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.filter = zone.filter
        self._presence: dict[int, Presence] = {}

    def __len__(self) -> int:
        return len(self._presence)

    @property
    def members(self) -> list[int]:
        """Track ids confirmed in the zone (including those inside their inertia), oldest visit first."""
        inside = [(p.run_start or 0.0, tid) for tid, p in self._presence.items() if p.inside]
        return [tid for _, tid in sorted(inside)]

    def is_in(self, track_id: int) -> bool:
        presence = self._presence.get(track_id)
        return presence is not None and presence.inside

    def visit_s(self, track_id: int) -> float:
        """Seconds of the object's current visit (0 when it is not in)."""
        presence = self._presence.get(track_id)
        return presence.visit_s() if presence is not None else 0.0

    def total_s(self, track_id: int) -> float | None:
        """Seconds of all its visits; None when it never was in."""
        presence = self._presence.get(track_id)
        if presence is None or (not presence.inside and presence.past_s == 0.0):
            return None
        return presence.total_s()

    def observe(self, now: float, track_ids: Iterable[int], inside: np.ndarray) -> Transitions:
        """One frame: `inside[i]` says whether the i-th seen object is inside and passes the filter.
        Objects with state here that are not among `track_ids` are missing, which counts like outside."""
        changes = Transitions()
        seen = set()
        for track_id, is_inside in zip(track_ids, inside, strict=True):
            seen.add(track_id)
            presence = self._presence.get(track_id)
            if is_inside:
                if presence is None:
                    presence = self._presence[track_id] = Presence()
                self._sighted_inside(now, track_id, presence, changes)
            elif presence is not None:
                self._absent(track_id, presence, changes)
        for track_id in [tid for tid in self._presence if tid not in seen]:
            self._absent(track_id, self._presence[track_id], changes)
        return changes

    def forget(self, track_id: int) -> bool:
        """Drop an object that is gone for good; True when it was in (so it has just left)."""
        presence = self._presence.pop(track_id, None)
        return presence is not None and presence.inside

    def _sighted_inside(self, now: float, track_id: int, presence: Presence, changes: Transitions) -> None:
        if presence.run_start is None:
            presence.run_start, presence.run_frames = now, 0
        presence.run_frames += 1
        presence.last_inside, presence.out_frames = now, 0
        if (
            not presence.inside
            and presence.run_frames >= self.filter.min_frames
            and now - presence.run_start >= self.filter.min_time_s - EPSILON_S
        ):
            presence.inside = True
            changes.entered.append(track_id)

    def _absent(self, track_id: int, presence: Presence, changes: Transitions) -> None:
        if presence.run_start is None:
            return
        presence.out_frames += 1
        if presence.out_frames < self.filter.inertia_frames:
            return
        if presence.inside:
            presence.past_s += presence.visit_s()
            presence.inside = False
            changes.left.append(track_id)
        presence.run_start, presence.run_frames, presence.out_frames = None, 0, 0
        if presence.past_s == 0.0:
            del self._presence[track_id]  # never was in: nothing to remember
