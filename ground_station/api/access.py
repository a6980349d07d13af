"""The type of `require`, which create_app builds once and every route module takes: it turns a permission into
a FastAPI dependency that returns the caller (401 unauthenticated, 403 not allowed or without its CSRF token)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission

Require = Callable[[Permission], Callable[[Request], Principal]]
