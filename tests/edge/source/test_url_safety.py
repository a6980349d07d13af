"""A source URL that slipped past validation (a port that is not a number) or that FFmpeg echoes back in an error
never kills the source's thread and never puts its password in a reason, a log line or a status."""

from __future__ import annotations

import logging
import time

from edge.config.source import ReconnectConfig, SourceConfig
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceSupervisor
from smarteye.wire.messages import SourceState

SECRET = "hunter2"


def _wait(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_bad_port_url_keeps_the_thread_alive_and_the_password_hidden(caplog) -> None:
    config = SourceConfig.model_construct(
        name="cam", url=f"rtsp://admin:{SECRET}@127.0.0.1:55a4/x?password={SECRET}", open_timeout_s=2.0,
        reconnect=ReconnectConfig(initial_s=0.1, max_s=0.2),
    )  # fmt: skip
    states: list[tuple[SourceState, str | None]] = []
    supervisor = SourceSupervisor(config, FrameBoard(), lambda name, h: states.append((h.state, h.reason)))
    caplog.set_level(logging.DEBUG)
    supervisor.start()
    try:
        assert _wait(lambda: supervisor.health.reconnects >= 2), states
        assert supervisor._thread.is_alive()  # retrying, not dead
    finally:
        supervisor.stop()
    reasons = [reason for _, reason in states if reason]
    assert reasons and all(SECRET not in reason for reason in reasons)
    assert all("rtsp://***@127.0.0.1:55a4/x?password=***" in reason for reason in reasons), reasons
    assert SECRET not in caplog.text
