"""The boxes drawn on video frames that detection did not see: the latest detection's tracks, moved to the frame's time.

The live video runs at the camera's rate, detection at its own (slower, variable) rate. Each video frame shows the
tracks of the latest finished detection, never an older one, each moved by its own velocity to the frame's capture
time, so boxes glide with their objects instead of jumping once per detection.

Velocity is a linear extrapolation of the box's centre from the track's last two detections, in pixels per second
of capture time; the box keeps its latest size (edge-by-edge extrapolation turns the detector's size jitter into
boxes that swell and shrink).
Not the tracker's Kalman state: ultralytics keeps that velocity per tracker *update* (per detection, whatever time
passed between two), in private STrack fields, and BoT-SORT's camera-motion compensation shifts it again; the
detection interval varies with the scheduler, so it would have to be divided by the real interval anyway. Two
timestamped boxes give that directly, for every tracker and for oriented boxes alike.

Thread-safety: `update` runs on the detection thread, `at` on the encoder's; the state is one immutable snapshot
swapped in a single assignment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from edge.track.tracker import TrackedBox

MAX_HORIZON_S = 1.0  # a box is moved at most this far from its detection: beyond, the guess is worth less than none
STALE_S = 2.0  # no detection for this long (detection stalled, stream rate-capped hard): draw no boxes at all
MIN_INTERVAL_S = 0.01  # two detections closer than this give no usable velocity (a duplicate frame)


@dataclass(frozen=True, slots=True)
class Velocity:
    """Pixels per second of the box's centre."""

    dx: float
    dy: float


@dataclass(frozen=True, slots=True)
class _Snapshot:
    time: float
    tracks: tuple[TrackedBox, ...]
    velocities: dict[int, Velocity]


class TrackMotion:
    """One stream's latest detection and each of its tracks' velocity; `at(t)` gives the boxes for time t."""

    def __init__(self, max_horizon_s: float = MAX_HORIZON_S, stale_s: float = STALE_S) -> None:
        self.max_horizon_s = max_horizon_s
        self.stale_s = stale_s
        self._snapshot: _Snapshot | None = None
        self._previous: dict[int, tuple[float, TrackedBox]] = {}  # per track: its last detection (detection thread)

    @property
    def detection_time(self) -> float | None:
        """Capture time of the detection whose tracks are drawn now."""
        snapshot = self._snapshot
        return snapshot.time if snapshot is not None else None

    def update(self, capture_time: float, tracks: Sequence[TrackedBox]) -> None:
        """A detection finished on the frame captured at `capture_time`: its tracks are what frames show from now."""
        snapshot = self._snapshot
        if snapshot is not None and capture_time < snapshot.time:
            return  # an older frame finishing late (never happens with one detection loop): keep the newest
        velocities: dict[int, Velocity] = {}
        seen: dict[int, tuple[float, TrackedBox]] = {}
        for box in tracks:
            before = self._previous.get(box.track_id)
            if before is not None and capture_time - before[0] >= MIN_INTERVAL_S:
                dt = capture_time - before[0]
                old = before[1]
                velocities[box.track_id] = Velocity(
                    (box.x1 + box.x2 - old.x1 - old.x2) / 2 / dt, (box.y1 + box.y2 - old.y1 - old.y2) / 2 / dt
                )
            seen[box.track_id] = (capture_time, box)
        self._previous = seen  # tracks that vanished are forgotten: a new track of the same id starts still
        self._snapshot = _Snapshot(capture_time, tuple(tracks), velocities)

    def clear(self) -> None:
        """The source went down: what was detected before says nothing about the frames after it comes back."""
        self._snapshot = None
        self._previous = {}

    def at(self, frame_time: float) -> list[TrackedBox]:
        """The latest detection's tracks moved to `frame_time` (capture time of the frame they are drawn on)."""
        snapshot = self._snapshot
        if snapshot is None:
            return []
        elapsed = frame_time - snapshot.time
        if abs(elapsed) > self.stale_s:
            return []
        horizon = max(-self.max_horizon_s, min(self.max_horizon_s, elapsed))
        if horizon == 0.0 or not snapshot.velocities:
            return list(snapshot.tracks)
        return [_moved(box, snapshot.velocities.get(box.track_id), horizon) for box in snapshot.tracks]


def _moved(box: TrackedBox, velocity: Velocity | None, seconds: float) -> TrackedBox:
    """A moved copy of `box` (never the box itself: it is the frame's, shared with the other sinks)."""
    if velocity is None:
        return box
    dx, dy = velocity.dx * seconds, velocity.dy * seconds
    obb = box.obb
    if obb is not None:  # the oriented box moves with its hull, keeps its size and angle
        obb = (obb[0] + dx, obb[1] + dy, obb[2], obb[3], obb[4])
    return dataclasses.replace(box, x1=box.x1 + dx, y1=box.y1 + dy, x2=box.x2 + dx, y2=box.y2 + dy, obb=obb)
