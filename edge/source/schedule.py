"""Which stream's pending frame detection takes next, when it cannot keep up with every stream.

The policy, in order:

1. **Rate cap.** A stream with `max_detection_fps` is not eligible until its next slot; its newest frame waits on
   the board (latest wins, so it is fresh when its turn comes). Slots follow a steady grid (one per 1/fps), so a
   source whose frames do not line up with the grid still gets its full cap.
2. **Floor.** An eligible stream that has gone unserved for both `floor_interval_s` (1 s) and `floor_passes` (10)
   detections of other streams goes first, the longest waiting first: no stream is ever starved, whatever its
   priority. Under overload a lower-priority stream still gets about one detection a second, and never more than
   about 1 in 11 of them when detection itself is slow (so the floor cannot take over a slow detector).
3. **Priority.** Otherwise the highest `priority` among the eligible streams (drones before fixed cameras).
4. **Weighted fairness among equals.** Within one priority, start-time fair queueing: each serve advances the
   stream's virtual time by 1/`detection_weight`, and the stream with the smallest virtual time goes next (ties:
   the order of the config, then of first sight). A stream that was idle (no frame, rate-capped, or new)
   restarts at the level's current virtual time instead of catching up in a burst.

Only the choice lives here (no locks, no frames): the FrameBoard (edge/source/slot.py) holds the pending frames
and asks. Times are `time.monotonic()` seconds, passed in, so the policy can be tested on constructed times.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

FLOOR_INTERVAL_S = 1.0
FLOOR_PASSES = 10


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """How one stream competes for detection (from its source config)."""

    priority: int = 1
    max_fps: float | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"weight must be > 0, got {self.weight}")
        if self.max_fps is not None and self.max_fps <= 0:
            raise ValueError(f"max_fps must be > 0 or None, got {self.max_fps}")


@dataclass(slots=True)
class StreamTurns:
    """One stream's scheduling state and its counters (read by the metrics at scrape time)."""

    policy: StreamPolicy
    order: int  # when the stream was first seen: the last tie-breaker
    virtual_time: float = 0.0
    next_slot: float | None = None  # earliest time the rate cap allows the next serve
    last_served: float | None = None
    waiting_since: float | None = None  # first time seen eligible-and-pending since the last serve
    served: int = 0
    passed_over: int = 0  # serves of another stream while this one had an eligible frame waiting
    passes_since_served: int = 0  # serves of other streams since this one's last (waiting or not)
    capped_drops: int = 0  # frames replaced on the board while the rate cap held the stream back
    floor_served: int = 0  # serves granted by the floor rather than by priority


@dataclass(slots=True)
class DetectionScheduler:
    """The policy above, with per-stream state; not thread-safe (the FrameBoard calls it under its lock)."""

    policies: dict[str, StreamPolicy] = field(default_factory=dict)
    floor_interval_s: float = FLOOR_INTERVAL_S
    floor_passes: int = FLOOR_PASSES
    turns: dict[str, StreamTurns] = field(default_factory=dict)
    _clock: dict[int, float] = field(default_factory=dict)  # virtual time per priority level

    def __post_init__(self) -> None:
        for name in self.policies:  # configured streams exist from the start (scrapes read them; ties: config order)
            self.stream(name)

    def stream(self, name: str) -> StreamTurns:
        """The stream's state, created with its policy (or the default one) on first sight."""
        turns = self.turns.get(name)
        if turns is None:
            turns = StreamTurns(self.policies.get(name, StreamPolicy()), order=len(self.turns))
            self.turns[name] = turns
        return turns

    def eligible(self, name: str, now: float) -> bool:
        slot = self.stream(name).next_slot
        return slot is None or now >= slot

    def next_ready(self, pending: Collection[str], now: float) -> float | None:
        """When the earliest rate-capped pending stream becomes eligible (None if one already is, or none pend)."""
        slots = [self.stream(name).next_slot for name in pending]
        if not slots or any(slot is None or slot <= now for slot in slots):
            return None
        return min(slot for slot in slots if slot is not None)

    def pick(self, pending: Collection[str], now: float) -> str | None:
        """The stream to serve now among those with a pending frame, or None if every one is rate-capped."""
        eligible = []
        for name in pending:
            turns = self.stream(name)
            if self.eligible(name, now):
                eligible.append(name)
                if turns.waiting_since is None:
                    turns.waiting_since = now
        if not eligible:
            return None
        chosen = self._choose(eligible, now)
        for name in eligible:
            if name != chosen:
                self.turns[name].passed_over += 1
        return chosen

    def _choose(self, eligible: list[str], now: float) -> str:
        floor = self.floor_interval_s
        starving = [
            name
            for name in eligible
            if now - self._since(name) >= floor and self.turns[name].passes_since_served >= self.floor_passes
        ]
        if starving:
            chosen = min(
                starving, key=lambda name: (self._since(name), self.turns[name].virtual_time, self.turns[name].order)
            )
            self.turns[chosen].floor_served += 1
            return chosen
        top = max(self.turns[name].policy.priority for name in eligible)
        level = [name for name in eligible if self.turns[name].policy.priority == top]
        clock = self._clock.get(top, 0.0)
        for name in level:  # an idle stream restarts at the level's clock: no burst to catch up
            turns = self.turns[name]
            turns.virtual_time = max(turns.virtual_time, clock)
        return min(level, key=lambda name: (self.turns[name].virtual_time, self.turns[name].order))

    def _since(self, name: str) -> float:
        """Since when the stream has gone unserved: its last serve, or when it first waited if never served."""
        turns = self.turns[name]
        if turns.last_served is not None:
            return turns.last_served
        return turns.waiting_since if turns.waiting_since is not None else float("inf")

    def dropped(self, name: str, now: float) -> None:
        """A pending frame of `name` was replaced by a newer one; counted apart when the rate cap caused it."""
        if not self.eligible(name, now):
            self.stream(name).capped_drops += 1

    def idle(self, name: str) -> None:
        """The stream has no frame any more (its source went away): it is not waiting."""
        self.stream(name).waiting_since = None

    def served(self, name: str, now: float) -> None:
        """Record that `name`'s frame was taken at `now`."""
        turns = self.stream(name)
        priority = turns.policy.priority
        start = max(turns.virtual_time, self._clock.get(priority, 0.0))
        self._clock[priority] = start
        turns.virtual_time = start + 1.0 / turns.policy.weight
        if turns.policy.max_fps is not None:
            interval = 1.0 / turns.policy.max_fps
            # a steady grid of slots; a stream served late does not bank more than one slot of credit
            base = now if turns.next_slot is None else max(turns.next_slot, now - interval)
            turns.next_slot = base + interval
        turns.last_served = now
        turns.waiting_since = None
        turns.served += 1
        turns.passes_since_served = 0
        for other in self.turns.values():
            if other is not turns:
                other.passes_since_served += 1
