"""Each track's ground position fused over its life, weighted by each fix's uncertainty.

A single fix from a drone is uncertain by metres to tens of metres (telemetry and attitude errors grow with
range); fixes of the same object from frame to frame, especially as the drone closes in, shrink that. Each
horizontal axis runs a one-dimensional Kalman filter on a slowly wandering position: the prediction adds
the variance an object walking at `speed_m_s` can cover, so a person who moves is followed and a parked car
converges; each fix is weighed by its own 1-sigma (GeoPosition.uncertainty_m). A fix without a bounded
uncertainty (a grazing ray) is not fused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from smarteye.wire.messages import GeoPosition

EARTH_RADIUS_M = 6_378_137.0


@dataclass(slots=True)
class _Estimate:
    anchor_lat: float
    anchor_lon: float
    north: float
    east: float
    variance: float  # m², the same on both axes (fixes are isotropic)
    time: float


class TrackFusion:
    """Fused ground positions of one stream's tracks, by track id (tracks unseen for `forget_s` are dropped)."""

    def __init__(self, speed_m_s: float = 1.5, forget_s: float = 30.0, max_tracks: int = 2000) -> None:
        self.speed_m_s = speed_m_s
        self.forget_s = forget_s
        self.max_tracks = max_tracks
        self._tracks: dict[int, _Estimate] = {}

    def update(self, track_id: int, fix: GeoPosition | None, time: float) -> GeoPosition | None:
        """The track's fused position after this frame's fix (the previous one if the fix can't be fused)."""
        estimate = self._tracks.get(track_id)
        if fix is None or fix.uncertainty_m is None or not math.isfinite(fix.uncertainty_m):
            return self._position(estimate, fix) if estimate is not None else None
        measured = max(fix.uncertainty_m, 0.1) ** 2
        if estimate is None:
            if len(self._tracks) >= self.max_tracks:
                self._forget(time, keep=self.max_tracks // 2)
            estimate = _Estimate(fix.lat, fix.lon, 0.0, 0.0, measured, time)
            self._tracks[track_id] = estimate
            return self._position(estimate, fix)
        elapsed = max(0.0, time - estimate.time)
        estimate.variance += (self.speed_m_s * elapsed) ** 2  # where it may have gone since
        north, east = _offset(estimate.anchor_lat, estimate.anchor_lon, fix.lat, fix.lon)
        gain = estimate.variance / (estimate.variance + measured)
        estimate.north += gain * (north - estimate.north)
        estimate.east += gain * (east - estimate.east)
        estimate.variance *= 1.0 - gain
        estimate.time = time
        return self._position(estimate, fix)

    def forget(self, now: float) -> None:
        """Drop tracks not updated for forget_s (their ids may come back as new objects)."""
        self._forget(now)

    def _forget(self, now: float, keep: int | None = None) -> None:
        stale = [tid for tid, e in self._tracks.items() if now - e.time > self.forget_s]
        for tid in stale:
            del self._tracks[tid]
        if keep is not None and len(self._tracks) > keep:
            for tid, _ in sorted(self._tracks.items(), key=lambda item: item[1].time)[: len(self._tracks) - keep]:
                del self._tracks[tid]

    @staticmethod
    def _position(estimate: _Estimate, fix: GeoPosition | None) -> GeoPosition:
        lat = estimate.anchor_lat + math.degrees(estimate.north / EARTH_RADIUS_M)
        lon = estimate.anchor_lon + math.degrees(
            estimate.east / (EARTH_RADIUS_M * math.cos(math.radians(estimate.anchor_lat)))
        )
        source = fix.source if fix is not None else "mavlink"
        return GeoPosition(lat=lat, lon=lon, uncertainty_m=round(math.sqrt(estimate.variance), 2), source=source)


def _offset(lat: float, lon: float, lat2: float, lon2: float) -> tuple[float, float]:
    north = math.radians(lat2 - lat) * EARTH_RADIUS_M
    east = math.radians(lon2 - lon) * EARTH_RADIUS_M * math.cos(math.radians(lat))
    return north, east
