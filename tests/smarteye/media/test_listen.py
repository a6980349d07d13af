"""A taken port of an optional server moves to the next free one with a warning naming the key."""

from __future__ import annotations

import logging
import socket

import pytest

from smarteye.media.listen import listen_or_next


def test_free_port_is_used_as_is() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with listen_or_next("127.0.0.1", port, "video.whep.port") as sock:
        assert sock.getsockname()[1] == port


def test_taken_port_moves_on_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken, caplog.at_level(logging.WARNING):
        port = taken.getsockname()[1]
        with listen_or_next("127.0.0.1", port, "video.whep.port") as sock:
            chosen = sock.getsockname()[1]
            assert chosen != port
            with socket.create_connection(("127.0.0.1", chosen), timeout=2):
                pass  # really listening
    assert f"video.whep.port: port {port} on 127.0.0.1 is taken; serving on {chosen}" in caplog.text


def test_other_errors_are_raised() -> None:
    with pytest.raises(OSError):
        listen_or_next("192.0.2.1", 0, "video.whep.port")  # not an address of this machine
