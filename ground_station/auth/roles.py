"""Roles and what each may do: one table, so every route's rule is written once."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PILOT = "pilot"
    SUPERVISOR = "supervisor"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"  # events, snapshots, health, stats, live push
    TELEMETRY = "telemetry"  # the pilot map and HUD (vehicle positions are sensitive)
    ADMIN = "admin"  # users and API tokens


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.PILOT: frozenset({Permission.READ, Permission.TELEMETRY}),
    Role.SUPERVISOR: frozenset({Permission.READ, Permission.TELEMETRY}),
    Role.VIEWER: frozenset({Permission.READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
