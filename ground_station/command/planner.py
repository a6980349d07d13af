"""Plan a "look at" flight before anything is sent: where to hold, how high, and whether it is allowed.

The drone holds at a standoff point short of the target on its way in, at a set height above it, and points
its camera at the target. A plan is refused, naming the limit, if the target or the standoff point is
farther from home than allowed or the straight route enters a no-fly zone; nothing reaches the vehicle
until a pilot confirms a plan that passed.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field

from shapely.geometry import LineString, Point, Polygon

from ground_station.command.config import CommandConfig

EARTH_RADIUS_M = 6_378_137.0
CRUISE_M_S = 8.0  # for the ETA shown with a plan; the vehicle's own speed limit governs the flight


class PlanRefused(ValueError):
    """The flight would break a configured limit; the message names it."""


def offset_m(lat: float, lon: float, lat2: float, lon2: float) -> tuple[float, float]:
    """North and east metres from (lat, lon) to (lat2, lon2) on a local flat earth (fine over a few km)."""
    north = math.radians(lat2 - lat) * EARTH_RADIUS_M
    east = math.radians(lon2 - lon) * EARTH_RADIUS_M * math.cos(math.radians(lat))
    return north, east


def distance_m(lat: float, lon: float, lat2: float, lon2: float) -> float:
    return math.hypot(*offset_m(lat, lon, lat2, lon2))


def moved(lat: float, lon: float, north: float, east: float) -> tuple[float, float]:
    """The point `north`, `east` metres from (lat, lon)."""
    return (
        lat + math.degrees(north / EARTH_RADIUS_M),
        lon + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(lat)))),
    )


@dataclass(frozen=True, slots=True)
class Target:
    lat: float
    lon: float
    alert_id: str | None = None
    label: str | None = None


@dataclass(slots=True)
class LookPlan:
    """A checked flight, waiting for a pilot's confirmation."""

    id: str
    vehicle: str
    target: Target
    standoff: tuple[float, float]  # lat, lon
    altitude_m: float  # above home
    route: list[tuple[float, float]]  # lat, lon from the vehicle's position
    distance_m: float
    eta_s: float
    created: float = field(default_factory=time.time)
    author: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "vehicle": self.vehicle,
            "target": {"lat": self.target.lat, "lon": self.target.lon, "alert_id": self.target.alert_id,
                       "label": self.target.label},
            "standoff": {"lat": self.standoff[0], "lon": self.standoff[1]}, "altitude_m": self.altitude_m,
            "route": [{"lat": lat, "lon": lon} for lat, lon in self.route],
            "distance_m": round(self.distance_m, 1), "eta_s": round(self.eta_s, 1), "created": self.created,
            "author": self.author,
        }  # fmt: skip


def plan_look(
    config: CommandConfig,
    vehicle: str,
    position: tuple[float, float],
    home: tuple[float, float],
    target: Target,
) -> LookPlan:
    """The plan for `vehicle` at `position` (lat, lon) to look at `target`, or PlanRefused naming the limit."""
    limit = config.max_distance_from_home_m
    from_home = distance_m(*home, target.lat, target.lon)
    if from_home > limit:
        raise PlanRefused(
            f"target is {from_home:.0f} m from {vehicle}'s home, beyond max_distance_from_home_m ({limit:.0f} m)"
        )
    north, east = offset_m(target.lat, target.lon, *position)
    away = math.hypot(north, east)
    if away > 0.5:  # hold short of the target on the way in
        standoff = moved(target.lat, target.lon, north / away * config.standoff_m, east / away * config.standoff_m)
    else:  # right above it: back off to the south
        standoff = moved(target.lat, target.lon, -config.standoff_m, 0.0)
    if away < config.standoff_m:
        standoff = position  # already close enough: look from here
    if distance_m(*home, *standoff) > limit:
        raise PlanRefused(f"standoff point would be beyond max_distance_from_home_m ({limit:.0f} m)")
    route = [position, standoff]
    path = LineString(route) if position != standoff else Point(position)
    for zone in config.no_fly:
        if path.intersects(Polygon(zone.points)):
            raise PlanRefused(f"route enters no-fly zone {zone.name!r}")
    length = distance_m(*position, *standoff)
    return LookPlan(
        id=secrets.token_urlsafe(8),
        vehicle=vehicle,
        target=target,
        standoff=standoff,
        altitude_m=config.altitude_above_target_m,
        route=route,
        distance_m=length,
        eta_s=length / CRUISE_M_S,
    )
