"""scripts/soak.py names the descriptors behind a step in a process's descriptor count (the 30-min soak saw
the station's go 25 → 27 once and stay, with nothing to say what they were)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from scripts.soak import fd_changes, fd_targets

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_added_and_removed_descriptors_are_named_with_their_targets(tmp_path: Path) -> None:
    pid = os.getpid()
    before = fd_targets(pid)
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    log = (tmp_path / "station.log").open("w")
    closed = {log.fileno(), client.fileno()}
    try:
        after = fd_targets(pid)
        change = fd_changes(pid, before, after)
        ours = {server.fileno(), client.fileno(), accepted.fileno(), log.fileno()}
        assert ours <= {int(line.split(":")[0]) for line in change["added"]}  # (other threads may open more)
        added = "\n".join(change["added"])
        port, client_port = server.getsockname()[1], client.getsockname()[1]
        assert f"{log.fileno()}: {tmp_path / 'station.log'}" in change["added"]
        assert f"(tcp 127.0.0.1:{port} -> 0.0.0.0:0 listen)" in added
        assert f"(tcp 127.0.0.1:{client_port} -> 127.0.0.1:{port} established)" in added
    finally:
        log.close()
        client.close()
    try:
        change = fd_changes(pid, after, fd_targets(pid))
        assert closed <= {int(line.split(":")[0]) for line in change["removed"]}
    finally:
        accepted.close()
        server.close()
