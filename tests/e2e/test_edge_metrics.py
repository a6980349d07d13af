"""Acceptance (structure): the edge node's /metrics parse as Prometheus text and expose a histogram per
stage, filled by frames that really flowed (real model, real video, a real broker, live video encoded)."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from edge.config import parse_config
from edge.factory import build_node
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.ports import free_udp_port

STAGES = {"decode", "wait", "convert", "inference", "tracking", "events", "publish", "video", "encode"}


def test_edge_metrics_have_stage_histograms_after_frames_flowed(media, model_path, tmp_path) -> None:
    with MosquittoBroker.secured(["metrics"]) as broker:
        config = parse_config(
            {
                "node": "metrics",
                "sources": [{"name": "cam", "url": str(media("vtest.avi")), "realtime": False}],
                "detector": {"model": str(model_path), "imgsz": 320},
                "mqtt": {**broker.client_settings("metrics"), "spool_dir": str(tmp_path / "spool")},
                "metrics": {"port": 0},
                # A UDP MPEG-TS output is a consumer, so every processed frame is also drawn on and encoded.
                "video": {"whep": {"port": 0}, "udp_outputs": {"cam": f"udp://127.0.0.1:{free_udp_port()}"}},
            }
        )
        node = build_node(config)
        node.start()
        try:
            assert node.metrics_port, "the metrics server did not start"
            deadline = time.monotonic() + 90
            while node.pipeline.stats["cam"].processed < 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)  # the encoder thread finishes the last frames it was handed
            url = f"http://127.0.0.1:{node.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                text = response.read().decode()
        finally:
            node.stop()

    families = {family.name: family for family in text_string_to_metric_families(text)}
    stage = families["smarteye_edge_stage_seconds"]
    assert stage.type == "histogram"
    counts = {s.labels["stage"]: s.value for s in stage.samples if s.name.endswith("_count")}
    assert set(counts) >= STAGES, f"stages without a histogram: {STAGES - set(counts)}"
    assert all(counts[name] >= 20 for name in STAGES - {"encode"}), counts
    assert counts["encode"] >= 10, counts
    inference_sum = next(s.value for s in stage.samples if s.name.endswith("_sum") and s.labels["stage"] == "inference")
    assert inference_sum > 0.001 * counts["inference"]  # real model time, not zeros

    def value(name: str) -> float:
        return next(s.value for s in families[name].samples if s.labels.get("stream") == "cam")

    assert value("smarteye_edge_frames_in") >= value("smarteye_edge_frames_processed") >= 20
    assert value("smarteye_edge_frames_dropped") == 0  # a non-realtime file waits for detection: nothing dropped
    assert value("smarteye_edge_reconnects") == 0
    published = families["smarteye_edge_capture_to_published_seconds"]
    assert any(s.name.endswith("_count") and s.value >= 1 for s in published.samples), "no event was published"
    assert "smarteye_edge_spool_depth" in families and "smarteye_edge_video_viewers" in families
