"""Roles and what each may do: one table, so every route's rule is written once."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PILOT = "pilot"
    SUPERVISOR = "supervisor"
    VIEWER = "viewer"
    EDGE = "edge"  # for edge nodes' API tokens: may send live video, read nothing


class Permission(StrEnum):
    READ = "read"  # events, snapshots, health, stats, live push
    TELEMETRY = "telemetry"  # the pilot map and HUD (vehicle positions are sensitive)
    ADMIN = "admin"  # users and API tokens
    SUPERVISE = "supervise"  # edit rules, acknowledge and resolve alerts, read the audit log and webhook deliveries
    VIDEO_UPLINK = "video_uplink"  # an edge node sending its live video to the station
    COMMAND = "command"  # send a vehicle somewhere, point its camera, hold, return (pilots and admins only)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission) - {Permission.VIDEO_UPLINK},
    Role.PILOT: frozenset({Permission.READ, Permission.TELEMETRY, Permission.COMMAND}),
    Role.SUPERVISOR: frozenset({Permission.READ, Permission.TELEMETRY, Permission.SUPERVISE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.EDGE: frozenset({Permission.VIDEO_UPLINK}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
