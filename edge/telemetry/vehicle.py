"""Per-vehicle telemetry state (also the MQTT wire message) and the small pure helpers behind it:
quaternion → Euler, field of view from focal length, wrap-safe angles and a bounded, time-indexed
history that can be interpolated so video frames get the telemetry of their own instant."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from typing import Literal

# How a history value is interpolated: linear, angle in [-180, 180), angle in [0, 360), or held (nearest).
Kind = Literal["lin", "a180", "a360", "hold"]


def wrap180(angle_deg: float) -> float:
    """Angle in [-180, 180)."""
    return (angle_deg + 180.0) % 360.0 - 180.0


def wrap360(angle_deg: float) -> float:
    """Angle in [0, 360)."""
    return angle_deg % 360.0


def angle_diff(a_deg: float, b_deg: float) -> float:
    """Shortest signed difference a - b, deg in [-180, 180): what tests and interpolation must compare."""
    return wrap180(a_deg - b_deg)


def lerp_angle(a_deg: float, b_deg: float, f: float, *, positive: bool = False) -> float:
    """Interpolate along the short way round, so 359° → 1° passes 0°, not 180°."""
    value = a_deg + wrap180(b_deg - a_deg) * f
    return wrap360(value) if positive else wrap180(value)


def quaternion_to_euler_deg(q: Sequence[float]) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in deg for a MAVLink quaternion (w, x, y, z), aerospace Z-Y-X order."""
    w, x, y, z = (float(c) for c in q)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not norm or not math.isfinite(norm):
        raise ValueError(f"quaternion {tuple(q)} has no rotation")
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)


def euler_deg_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(w, x, y, z) for Z-Y-X Euler angles in deg: the inverse of quaternion_to_euler_deg (tests, simulators)."""
    cr, sr = math.cos(math.radians(roll) / 2), math.sin(math.radians(roll) / 2)
    cp, sp = math.cos(math.radians(pitch) / 2), math.sin(math.radians(pitch) / 2)
    cy, sy = math.cos(math.radians(yaw) / 2), math.sin(math.radians(yaw) / 2)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


def fov_deg(sensor_mm: float, focal_mm: float) -> float | None:
    """Pinhole field of view across a sensor dimension; None when either size is unknown (0/NaN)."""
    if not (sensor_mm > 0 and focal_mm > 0 and math.isfinite(sensor_mm) and math.isfinite(focal_mm)):
        return None
    return math.degrees(2.0 * math.atan(sensor_mm / (2.0 * focal_mm)))


def _blend(a: object, b: object, f: float, kind: Kind) -> object:
    if a is None or b is None or kind == "hold":
        return a if f < 0.5 else b
    if kind == "lin":
        return a + (b - a) * f  # type: ignore[operator]
    return lerp_angle(a, b, f, positive=kind == "a360")  # type: ignore[arg-type]


class History:
    """Time-sorted samples of a few fields, bounded by age and count, interpolated on request.

    One history per message stream (position, attitude, gimbal) so a fast stream is never
    interpolated against a value held from a slower one.
    """

    def __init__(self, fields: Sequence[tuple[str, Kind]], max_age_s: float, max_len: int) -> None:
        self.names = tuple(name for name, _ in fields)
        self.kinds: tuple[Kind, ...] = tuple(kind for _, kind in fields)
        self.max_age_s = max_age_s
        self._samples: deque[tuple[float, tuple[object, ...]]] = deque(maxlen=max_len)

    def __len__(self) -> int:
        return len(self._samples)

    def span(self) -> tuple[float, float] | None:
        """(first, last) sample time, or None when empty."""
        return (self._samples[0][0], self._samples[-1][0]) if self._samples else None

    def add(self, t: float, values: Sequence[object]) -> None:
        """Append a sample; a clock that jumps back (new log, reboot) restarts the history."""
        samples = self._samples
        if samples:
            last = samples[-1][0]
            if t < last:
                if last - t > 1.0:
                    samples.clear()
                else:
                    return  # slightly out of order: keep the history sorted
            elif t == last:
                samples[-1] = (t, tuple(values))
                return
        samples.append((t, tuple(values)))
        oldest = t - self.max_age_s
        while samples[0][0] < oldest:
            samples.popleft()

    def at(self, t: float, max_gap_s: float) -> dict[str, object] | None:
        """Field values at time t: linear between the samples around t, the nearest sample when t is
        just outside the history or inside a gap, None when no sample is within max_gap_s."""
        samples = self._samples
        if not samples:
            return None
        i = bisect.bisect_right(samples, t, key=lambda s: s[0])
        if i == 0 or i == len(samples):
            t0, values = samples[0] if i == 0 else samples[-1]
            return dict(zip(self.names, values, strict=True)) if abs(t - t0) <= max_gap_s else None
        (ta, va), (tb, vb) = samples[i - 1], samples[i]
        if tb - ta > 2.0 * max_gap_s:  # a gap: do not invent a path across it
            near_t, near_v = (ta, va) if t - ta <= tb - t else (tb, vb)
            return dict(zip(self.names, near_v, strict=True)) if abs(t - near_t) <= max_gap_s else None
        f = (t - ta) / (tb - ta)
        if any(k == "hold" and a != b for k, a, b in zip(self.kinds, va, vb, strict=True)):
            f = 0.0 if f < 0.5 else 1.0  # e.g. gimbal frame changed: angles are not comparable
        return {name: _blend(a, b, f, kind) for name, kind, a, b in zip(self.names, self.kinds, va, vb, strict=True)}
