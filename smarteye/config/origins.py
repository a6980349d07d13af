"""Web origins (for CORS allow-lists) and loopback hosts, checked once at config load."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def check_origin(origin: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lower case, no path, no trailing slash)."""
    value = origin.strip().rstrip("/").lower()
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"origin {origin!r} has a bad port") from None
    if value == "*":
        raise ValueError("origin '*' would let any web page use it: list the players' origins instead")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise ValueError(f"origin {origin!r} must be scheme://host[:port], e.g. https://player.example.org")
    return value


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
