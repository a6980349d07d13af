"""The node's detection workers and its track thread: with parallel inference (OpenVINO infer requests) frames are
detected two at a time, yet tracking, events and the sinks see every stream's frames in order, each once. Real
node, real model, a real video file processed frame by frame (realtime: false), a real broker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.config import parse_config
from edge.factory import build_node
from edge.frame import Frame
from smarteye.sim.broker import MosquittoBroker, find_mosquitto

pytestmark = [pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
              pytest.mark.timeout(180)]  # fmt: skip

FRAMES = 40


class SeenOrder:
    """A sink noting which frames reached the sinks, in the order they did, and whether tracking had run."""

    name = "order"

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.tracked: list[bool] = []

    def consume(self, frame: Frame) -> None:
        self.seqs.append(frame.seq)
        self.tracked.append("tracking" in frame.timings and frame.detections is not None)


def test_parallel_detection_keeps_every_frame_in_order(model_path: Path, tmp_path: Path) -> None:
    with MosquittoBroker.secured(["workers"]) as broker:
        config = parse_config({
            "node": "workers", "sources": [{"name": "cam", "url": "vtest.avi", "realtime": False}],
            "detector": {"model": str(model_path), "imgsz": 320, "backend": "openvino"},
            "mqtt": {**broker.client_settings("workers"), "spool_dir": str(tmp_path)}, "video": {"enabled": False},
            "metrics": {"enabled": False},
        })  # fmt: skip
        node = build_node(config)
        detector = node.pipeline.stages["cam"][1]
        seen = SeenOrder()
        node.pipeline.sinks.append(seen)
        node.start()
        try:
            deadline = time.monotonic() + 120
            while len(seen.seqs) < FRAMES and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            node.stop()
    assert node.detection_workers == detector.slots.count >= 1  # one worker per frame the runtime infers at once
    assert seen.seqs[:FRAMES] == list(range(1, FRAMES + 1))  # every frame of the file, each once, in order
    assert all(seen.tracked)
    assert node.events_published > 0
