"""The node runs each detector once at start, before any camera frame: the first real frames are not the ones that
pay for the runtime's lazy set-up (compiling for the input shape, ultralytics' predictor)."""

from __future__ import annotations

import time

from edge.config import parse_config
from edge.factory import build_node
from smarteye.sim.ports import free_tcp_port


def test_detector_warms_up_at_start_without_any_frame(model_path, tmp_path) -> None:
    silent = f"rtsp://127.0.0.1:{free_tcp_port()}/nothing"  # nothing listens: no frame ever arrives
    config = parse_config({
        "sources": [{"name": "cam", "url": silent}], "detector": {"model": str(model_path)},
        "video": {"enabled": False}, "metrics": {"enabled": False},
        "mqtt": {"url": f"mqtt://127.0.0.1:{free_tcp_port()}", "spool_dir": str(tmp_path)},
    })  # fmt: skip
    node = build_node(config)
    detector = node.pipeline.stages["cam"][1]
    assert detector.name == "inference" and not detector.warm
    node.start()
    try:
        deadline = time.monotonic() + 60
        while not detector.warm and time.monotonic() < deadline:
            time.sleep(0.1)
        assert detector.warm
        assert node.pipeline.stats["cam"].processed == 0  # warmed by the node, not by a frame
    finally:
        node.stop()
