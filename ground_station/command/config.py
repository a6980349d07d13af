"""What the station may command: its vehicles (a MAVLink URL each) and the safety limits of a "look" flight."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from smarteye.strict import StrictModel
from smarteye.wire.names import valid_name
from smarteye.wire.rules import Space, Zone

MAVLINK_SCHEMES = ("tcp:", "tcpin:", "udpin:", "udpout:", "udp:", "udpbcast:", "/dev/", "COM")


class VehicleConfig(StrictModel):
    """One vehicle the station can command (the same URL forms as QGroundControl/MAVProxy links)."""

    name: Annotated[str, valid_name("vehicle name")] = Field(
        title="Name", description="How pilots and the API name the vehicle (letters, digits, _ and -)."
    )
    url: str = Field(
        title="MAVLink URL",
        description="tcp:host:port (e.g. an autopilot's or SITL's TCP server), udpin:0.0.0.0:14550 (the vehicle "
        "sends to the station), udpout:host:port, or a serial device /dev/ttyUSB0,57600.",
    )
    system_id: int = Field(1, ge=1, le=255, title="System id", description="The vehicle's MAVLink system id.")
    stream: str | None = Field(
        None,
        title="Video stream",
        description="node/stream of the edge stream this vehicle's camera feeds (e.g. drone-node/drone): its "
        "detections near a target confirm an alert.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(MAVLINK_SCHEMES):
            raise ValueError(f"url {value!r}: expected one of {', '.join(MAVLINK_SCHEMES)}… (a MAVLink link)")
        return value


class CommandConfig(StrictModel):
    """Vehicles and the limits every planned flight is checked against before any MAVLink is sent."""

    vehicles: list[VehicleConfig] = Field(default_factory=list, title="Vehicles")
    altitude_above_target_m: float = Field(
        30.0, ge=5, le=120, title="Altitude above target", description="Flight altitude over the target (m)."
    )
    standoff_m: float = Field(
        40.0, ge=0, le=500, title="Standoff", description="Horizontal distance kept from the target (m)."
    )
    max_distance_from_home_m: float = Field(
        1000.0, gt=0, title="Max distance from home", description="No planned point farther from home than this."
    )
    no_fly: list[Zone] = Field(
        default_factory=list, title="No-fly zones", description="lat/lon polygons no route may enter or cross."
    )
    heartbeat_timeout_s: float = Field(
        3.0, gt=0, le=60, title="Heartbeat timeout", description="A vehicle silent this long is shown as link lost."
    )
    ack_timeout_s: float = Field(
        3.0, gt=0, le=60, title="Acknowledgement timeout", description="How long a command waits for COMMAND_ACK."
    )
    arrive_m: float = Field(10.0, gt=0, title="Arrival radius", description="Arrived within this of the standoff.")
    confirm_radius_m: float = Field(
        15.0, gt=0, le=500, title="Confirmation radius",
        description="A detection on the vehicle's stream this close to the target, after arrival, confirms the alert.",
    )  # fmt: skip
    confirm_window_s: float = Field(
        30.0, gt=0, le=600, title="Confirmation window",
        description="Seconds after arrival to wait for such a detection before the alert is marked not seen.",
    )  # fmt: skip
    plan_ttl_s: float = Field(120.0, gt=0, title="Plan lifetime", description="An unconfirmed plan expires after this.")

    @field_validator("no_fly")
    @classmethod
    def _geo(cls, zones: list[Zone]) -> list[Zone]:
        for zone in zones:
            if zone.space != Space.GEO:
                raise ValueError(f"no_fly zone {zone.name!r}: space must be geo (lat, lon points)")
        return zones

    @field_validator("vehicles")
    @classmethod
    def _unique(cls, vehicles: list[VehicleConfig]) -> list[VehicleConfig]:
        names = [v.name for v in vehicles]
        if len(set(names)) != len(names):
            raise ValueError("vehicles: names must be unique")
        on_link = [(v.url, v.system_id) for v in vehicles]
        if len(set(on_link)) != len(on_link):
            raise ValueError("vehicles: two vehicles with the same url and system_id")
        return vehicles
