"""The edge node's Prometheus metrics: where each frame's time goes, stage by stage, and the counters an
operator watches (frames in, processed, dropped, reconnects, spool depth, viewers, malformed telemetry).

Histograms are observed on the frame path (a few microseconds each); counters that other parts already
keep (source health, the board's drops, the publisher's spool) are read at scrape time by a collector, so
nothing is counted twice. Each node has its own registry: tests and the demo may run several in a process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.frame import Frame

log = logging.getLogger("edge.metrics")

# From 1 ms (decode, tracking) to 10 s (a frame stuck behind a slow model on a loaded CPU).
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class StreamCounters:
    """One stream's running totals, as the parts that own them report them at scrape time."""

    frames_in: int
    processed: int
    dropped: int
    reconnects: int
    malformed_telemetry: int
    viewers: int
    detection_fps: float = 0.0  # over the pipeline's recent window
    passed_over: int = 0  # the scheduler's counters (edge/source/schedule.py)
    capped_drops: int = 0
    floor_served: int = 0


class _Totals(Collector):
    """Turns the parts' own counters into metric families when Prometheus scrapes."""

    def __init__(self, node: str, streams: Callable[[], dict[str, StreamCounters]],
                 spool_depth: Callable[[], int], spool_disk_full: Callable[[], int] | None = None,
                 spool_unconfirmed: Callable[[], int] | None = None) -> None:  # fmt: skip
        self.node, self.streams, self.spool_depth = node, streams, spool_depth
        self.spool_disk_full = spool_disk_full
        self.spool_unconfirmed = spool_unconfirmed

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["node", "stream"]
        families = {
            "frames_in": CounterMetricFamily(
                "smarteye_edge_frames_in", "Frames decoded from the source.", labels=labels
            ),
            "processed": CounterMetricFamily(
                "smarteye_edge_frames_processed", "Frames that went through every stage.", labels=labels
            ),
            "dropped": CounterMetricFamily(
                "smarteye_edge_frames_dropped", "Frames replaced by a newer one before detection (latest wins).",
                labels=labels,
            ),
            "reconnects": CounterMetricFamily("smarteye_edge_reconnects", "Source reconnections.", labels=labels),
            "malformed_telemetry": CounterMetricFamily(
                "smarteye_edge_malformed_telemetry", "KLV/MAVLink data that could not be decoded.", labels=labels
            ),
            "viewers": GaugeMetricFamily("smarteye_edge_video_viewers", "WHEP viewers of the stream.", labels=labels),
            "detection_fps": GaugeMetricFamily(
                "smarteye_edge_detection_fps", "Frames a second through detection, over the recent frames.",
                labels=labels,
            ),
            "passed_over": CounterMetricFamily(
                "smarteye_edge_scheduler_passed_over",
                "Times detection took another stream's frame while this one had a frame ready (priority, weight, "
                "another stream's floor).", labels=labels,
            ),
            "capped_drops": CounterMetricFamily(
                "smarteye_edge_scheduler_capped_drops",
                "Frames replaced while the stream's max_detection_fps held it back (included in frames_dropped).",
                labels=labels,
            ),
            "floor_served": CounterMetricFamily(
                "smarteye_edge_scheduler_floor_served",
                "Frames detected because the stream had waited a second, whatever its priority (no starvation).",
                labels=labels,
            ),
        }  # fmt: skip
        for stream, counters in self.streams().items():
            for key, family in families.items():
                family.add_metric([self.node, stream], getattr(counters, key))
        yield from families.values()
        spool = GaugeMetricFamily("smarteye_edge_spool_depth", "Events waiting in the MQTT spool.", labels=["node"])
        spool.add_metric([self.node], self.spool_depth())
        yield spool
        if self.spool_unconfirmed is not None:
            waiting = GaugeMetricFamily(
                "smarteye_edge_spool_unconfirmed",
                "Spooled events the broker accepted but the ground station has not confirmed storing yet "
                "(part of the spool depth).",
                labels=["node"],
            )
            waiting.add_metric([self.node], self.spool_unconfirmed())
            yield waiting
        if self.spool_disk_full is not None:
            full = CounterMetricFamily("smarteye_edge_spool_disk_full",
                                       "Spool writes refused for lack of disk space (held in memory, written later).",
                                       labels=["node"])  # fmt: skip
            full.add_metric([self.node], self.spool_disk_full())
            yield full


class EdgeMetrics:
    """Histograms of one node, and the scrape-time totals once the node's parts exist."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram(
            "smarteye_edge_stage_seconds",
            "Time per frame in each stage: decode, wait (capture → taken for detection), convert, inference, "
            "handoff (detected → taken by the track thread), tracking, geolocation, rules, events, and the sinks "
            "(publish, alerts, video); encode on the encoder thread; tile: mean time per tile when the detector "
            "slices frames.",
            ["node", "stream", "stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.capture_to_published = Histogram(
            "smarteye_edge_capture_to_published_seconds",
            "From a frame's capture to the MQTT publish of the event it caused.",
            ["node", "stream"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.alerts_published = Counter(
            "smarteye_edge_alerts_published",
            "Alert messages handed to MQTT, by state (a clip's announcement is an update).",
            ["node", "stream", "state"],
            registry=self.registry,
        )
        self.alert_clips = Counter(
            "smarteye_edge_alert_clips",
            "Alert clips by outcome: made; shortened (the stream stalled, the clip reached its size cap or the node "
            "stopped); skipped (no video in range, too many being recorded).",
            ["node", "stream", "outcome"],
            registry=self.registry,
        )
        self.tiles_per_frame = Histogram(
            "smarteye_edge_detector_tiles",
            "Tiles run per frame by sliced inference (bounded by detector.slicing.max_tiles_per_frame).",
            ["node", "stream"],
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self._server: object | None = None

    def observe_frame(self, frame: Frame) -> None:
        """Every stage time the frame collected on its way, and its tile count when the detector sliced it."""
        for stage, seconds in frame.timings.items():
            self.stage_seconds.labels(self.node, frame.stream, stage).observe(seconds)
        if frame.detections is not None and frame.detections.tiles:
            self.tiles_per_frame.labels(self.node, frame.stream).observe(frame.detections.tiles)

    def observe_stage(self, stream: str, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(self.node, stream, stage).observe(seconds)

    def observe_published(self, stream: str, latencies: Iterable[float]) -> None:
        child = self.capture_to_published.labels(self.node, stream)
        for seconds in latencies:
            child.observe(seconds)

    def count_alert(self, stream: str, state: str) -> None:
        self.alerts_published.labels(self.node, stream, state).inc()

    def count_clip(self, stream: str, outcome: str) -> None:
        self.alert_clips.labels(self.node, stream, outcome).inc()

    def add_totals(self, streams: Callable[[], dict[str, StreamCounters]], spool_depth: Callable[[], int],
                   spool_disk_full: Callable[[], int] | None = None,
                   spool_unconfirmed: Callable[[], int] | None = None) -> None:  # fmt: skip
        self.registry.register(_Totals(self.node, streams, spool_depth, spool_disk_full, spool_unconfirmed))

    def serve(self, host: str, port: int) -> int | None:
        """Serve /metrics on host:port (0 picks a free port); a taken port is a warning, not a failure:
        metrics are optional and must never keep the node from running."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            log.warning("metrics: cannot listen on %s:%d (%s); set metrics.listen to a free port", host, port, error)
            return None
        self._server = server
        return server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server.server_close()  # type: ignore[attr-defined]
            self._server = None
