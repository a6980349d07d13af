"""Free ports for the test peers (RTSP server, private broker, simulated drone, web server)."""

from __future__ import annotations

import socket


def free_tcp_port() -> int:
    """A TCP port that is free right now (the kernel's pick, so it never collides with a fixed
    port); another process may still grab it before it is used."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port that is free right now (same caveat as free_tcp_port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
