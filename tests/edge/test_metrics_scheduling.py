"""The scheduler's per-stream figures on /metrics: what a real board and scheduler counted, read at scrape time."""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge.frame import Frame
from edge.metrics import EdgeMetrics, StreamCounters
from edge.source.schedule import DetectionScheduler, StreamPolicy
from edge.source.slot import FrameBoard


def test_scheduler_counters_are_scraped_per_stream() -> None:
    policies = {"cam": StreamPolicy(priority=3, max_fps=0.5), "drone": StreamPolicy(priority=2)}
    board = FrameBoard(DetectionScheduler(policies))
    board.put(Frame("cam", 0, time.time(), None, 4, 4))
    assert board.take(0.1).stream == "cam"  # type: ignore[union-attr]  # top priority, then capped for 2 s
    for seq in range(3):
        for name in ("drone", "gate", "cam"):
            board.put(Frame(name, seq, time.time(), None, 4, 4))
        assert board.take(0.1).stream == "drone"  # type: ignore[union-attr]  # cam capped, gate lower
    metrics = EdgeMetrics("n1")
    scheduler = board.scheduler

    def counters() -> dict[str, StreamCounters]:
        return {
            name: StreamCounters(
                frames_in=3, processed=scheduler.stream(name).served, dropped=board.dropped[name], reconnects=0,
                malformed_telemetry=0, viewers=0, detection_fps=2.5 if name == "drone" else 0.0,
                passed_over=scheduler.stream(name).passed_over, capped_drops=scheduler.stream(name).capped_drops,
                floor_served=scheduler.stream(name).floor_served,
            )
            for name in ("cam", "drone", "gate")
        }  # fmt: skip

    metrics.add_totals(counters, lambda: 0)
    text = generate_latest(metrics.registry).decode()
    values = {
        (sample.name, sample.labels["stream"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "stream" in sample.labels
    }
    assert values[("smarteye_edge_detection_fps", "drone")] == 2.5
    assert values[("smarteye_edge_scheduler_passed_over_total", "gate")] == 3  # a frame ready at every take
    assert values[("smarteye_edge_scheduler_passed_over_total", "drone")] == 0
    assert values[("smarteye_edge_frames_dropped_total", "gate")] == 2
    assert values[("smarteye_edge_scheduler_capped_drops_total", "cam")] == 2  # replaced while capped
    assert values[("smarteye_edge_scheduler_capped_drops_total", "gate")] == 0
    assert values[("smarteye_edge_scheduler_floor_served_total", "gate")] == 0
