"""Per-track ground position fused over the track's life: uncertainty-weighted, shrinking as fixes agree,
following an object that moves, never fusing an unbounded fix."""

from __future__ import annotations

import math
import random

from edge.geo.fusion import TrackFusion
from smarteye.wire.messages import GeoPosition

LAT, LON = 36.3725, 127.3650
M_PER_DEG_LAT = 6_378_137.0 * math.pi / 180


def _fix(north: float, east: float, sigma: float | None) -> GeoPosition:
    return GeoPosition(lat=LAT + north / M_PER_DEG_LAT, lon=LON + east / (M_PER_DEG_LAT * math.cos(math.radians(LAT))),
                       uncertainty_m=sigma, source="mavlink")  # fmt: skip


def _error_m(p: GeoPosition, north: float = 0.0, east: float = 0.0) -> float:
    dn = (p.lat - LAT) * M_PER_DEG_LAT - north
    de = (p.lon - LON) * M_PER_DEG_LAT * math.cos(math.radians(LAT)) - east
    return math.hypot(dn, de)


def test_a_parked_car_converges_and_its_uncertainty_shrinks_as_the_drone_closes_in() -> None:
    rng = random.Random(7)
    fusion = TrackFusion(speed_m_s=0.1)
    sigmas = [25.0 - i * 0.22 for i in range(100)]  # 25 m far away … 3 m close
    fused = None
    for i, sigma in enumerate(sigmas):
        fused = fusion.update(1, _fix(rng.gauss(0, sigma), rng.gauss(0, sigma), sigma), 1000.0 + i * 0.2)
    assert fused is not None
    assert fused.uncertainty_m < min(sigmas), "fused fixes are surer than the best single one"
    assert _error_m(fused) < 3 * fused.uncertainty_m + 1.0


def test_a_walking_person_is_followed_not_averaged_away() -> None:
    fusion = TrackFusion(speed_m_s=1.5)
    fused = None
    for i in range(100):  # 1.4 m/s north for 20 s, fixes ±4 m
        t = i * 0.2
        fused = fusion.update(5, _fix(1.4 * t + (2 if i % 2 else -2), 0.0, 4.0), t)
    assert fused is not None and _error_m(fused, north=1.4 * 19.8) < 5.0


def test_unbounded_fixes_are_not_fused_and_old_tracks_are_forgotten() -> None:
    fusion = TrackFusion(forget_s=10)
    assert fusion.update(1, _fix(0, 0, None), 0.0) is None
    first = fusion.update(1, _fix(0, 0, 5.0), 1.0)
    unchanged = fusion.update(1, _fix(500, 500, None), 2.0)  # a grazing ray, hundreds of metres off
    assert first is not None and unchanged is not None and _error_m(unchanged) < 0.01
    fusion.forget(30.0)
    assert fusion.update(1, _fix(100, 0, 5.0), 31.0) is not None
    assert _error_m(fusion.update(1, _fix(100, 0, 5.0), 31.1), north=100) < 1.0, "a new object under an old id"
