"""A clean stop while sources hang (an RTSP server that accepts and never answers, as a camera on a dead
link does): the node stops every source at once, not one after another, and each stream's retained
status says `stopped`, never the state the hanging source was left in.  Real node, real model, real
Mosquitto; the hanging cameras are real TCP listeners."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import parse_config
from edge.factory import build_node
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import SourceState, StreamStatus

pytestmark = [pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
              pytest.mark.timeout(120)]  # fmt: skip


@pytest.fixture
def hanging_camera() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_clean_stop_with_hanging_sources_is_quick_and_says_stopped(
    hanging_camera: int, model_path: Path, tmp_path: Path
) -> None:
    statuses: list[StreamStatus] = []
    with MosquittoBroker.secured(["hang"]) as broker:
        sources = [{"name": f"cam{i}", "url": f"rtsp://127.0.0.1:{hanging_camera}/cam{i}", "open_timeout_s": 60}
                   for i in range(3)]  # fmt: skip
        config = parse_config({
            "node": "hang", "sources": sources, "detector": {"model": str(model_path), "imgsz": 320},
            "mqtt": {**broker.client_settings("hang"), "spool_dir": str(tmp_path)}, "video": {"enabled": False},
            "metrics": {"enabled": False}, "status_interval_s": 0.5,
        })  # fmt: skip
        node = build_node(config, on_status=statuses.append)
        node.start()
        deadline = time.monotonic() + 20
        while len({s.stream for s in statuses}) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert {s.stream for s in statuses} == {"cam0", "cam1", "cam2"}
        assert all(s.state is SourceState.CONNECTING for s in statuses)  # hanging in open
        started = time.monotonic()
        node.stop()
        took = time.monotonic() - started
    last = {s.stream: s for s in statuses}
    assert {name: status.state for name, status in last.items()} == dict.fromkeys(last, SourceState.STOPPED)
    assert took < 8.0, f"stop took {took:.1f} s"  # was 3 sources x 5 s join, one after another
