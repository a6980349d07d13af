"""Builds an edge node from its config: every part made once, wired together, nothing started.

The composition of the frame path (which stages each stream runs, which sinks see the frames) is
decided here and nowhere else; `EdgeNode` (edge/node.py) only runs what it is given. Tests pass their
own detector (or other parts) through the keyword arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from edge.config.geo import TelemetrySource
from edge.config.node import EdgeConfig
from edge.config.source import SourceConfig
from edge.control.rules import RulesListener
from edge.detect.detector import Detector
from edge.geo.locator import StreamGeolocator
from edge.metrics import EdgeMetrics, StreamCounters
from edge.node import EdgeNode, StreamParts
from edge.outputs.alerts import AlertSink
from edge.outputs.events import EventSink
from edge.outputs.mqtt_publisher import MqttPublisher
from edge.outputs.status import StatusReporter
from edge.outputs.video.service import LiveVideo
from edge.pipeline import Pipeline, Sink, Stage, StreamStats, stream_stages
from edge.rules.stage import RulesStage
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceSupervisor
from edge.telemetry.mavlink_reader import MavlinkReader
from edge.track.lifecycle import EventLifecycle
from edge.track.tracker import StreamTracker
from smarteye.config.loading import ConfigError
from smarteye.wire.messages import DetectionEvent, NodeAvailability, StreamStatus
from smarteye.wire.topics import availability_topic


def build_node(
    config: EdgeConfig,
    *,
    detector: Detector | None = None,
    on_event: Callable[[DetectionEvent], None] | None = None,
    on_status: Callable[[StreamStatus], None] | None = None,
) -> EdgeNode:
    """The whole node for `config`; raises ModelError for a model that cannot be loaded, ConfigError for rules the
    model or the stream cannot run (an unknown label, a geofence on a stream without `geo`)."""
    detector = detector or Detector(config.detector)
    _check_rules(config, set(detector.names.values()))
    metrics = EdgeMetrics(config.node)
    board = FrameBoard()
    publisher = _publisher(config)
    mavlink: dict[str, MavlinkReader] = {}  # one reader per link, shared by the cameras on it
    streams: dict[str, StreamParts] = {}
    stages: dict[str, list[Stage]] = {}
    for source in config.sources:
        if not source.enabled:
            continue
        supervisor = SourceSupervisor(source, board, lambda name, health: None)  # re-pointed at the node below
        lifecycle = EventLifecycle(config.node, source.name, detector.model_name, detector.names, config.events)
        geolocator = _geolocator(source, mavlink)
        rules = RulesStage(config.node, source.name, detector.names, source.rules, config.events.end_after_s)
        streams[source.name] = StreamParts(supervisor, lifecycle, geolocator, rules)
        stages[source.name] = stream_stages(detector, StreamTracker(config.tracker), geolocator, rules, lifecycle)
    prefix = config.mqtt.topic_prefix
    stats = {name: StreamStats() for name in streams}  # recorded by the pipeline, read by the video overlay
    events = EventSink(publisher, config.node, prefix, config.snapshots, metrics, on_event)
    video = (
        LiveVideo(config.video, config.node, list(streams), detector.names, metrics, stats)
        if config.video.enabled
        else None
    )
    alerts = AlertSink(
        publisher, config.node, prefix, config.snapshots, metrics, fanouts=video.fanouts if video is not None else None
    )  # clips are cut from the live video's own H.264: without video, alerts carry no clip (said once per stream)
    sinks: list[Sink] = [events, alerts, *([video] if video else [])]  # video last: it draws on the picture
    pipeline = Pipeline(stages, sinks, metrics, stats)
    supervisors = {name: parts.supervisor for name, parts in streams.items()}
    geolocators = {name: parts.geolocator for name, parts in streams.items() if parts.geolocator is not None}
    rules = {name: parts.rules for name, parts in streams.items()}
    status = StatusReporter(
        config.node, prefix, publisher, supervisors, pipeline.stats, board, geolocators, rules, on_status
    )
    node = EdgeNode(
        config, board=board, streams=streams, pipeline=pipeline, publisher=publisher, events=events, status=status,
        video=video, mavlink=mavlink, metrics=metrics, alerts=alerts,
    )  # fmt: skip
    for supervisor in supervisors.values():
        supervisor.on_state = node.source_changed
    geolocated = {source.name: source.geo is not None for source in config.sources}
    pushed = RulesListener(config.node, prefix, rules, set(detector.names.values()), geolocated, status.publish_status)
    pushed.attach(publisher)  # the station's retained rules arrive at every (re)connect

    def counters() -> dict[str, StreamCounters]:
        return {
            name: StreamCounters(
                frames_in=parts.supervisor.health.frames,
                processed=pipeline.stats[name].processed,
                dropped=board.dropped.get(name, 0),
                reconnects=parts.supervisor.health.reconnects,
                malformed_telemetry=_malformed(parts.geolocator),
                viewers=video.whep.viewers(video.fanouts[name]) if video is not None else 0,
            )
            for name, parts in streams.items()
        }

    metrics.add_totals(counters, lambda: publisher.stats()["pending"])
    return node


def _publisher(config: EdgeConfig) -> MqttPublisher:
    def availability(state: str) -> bytes:
        """`online` carries when it was said; `offline` may be the broker-sent last will, so no time."""
        stamp = time.time() if state == "online" else None
        return NodeAvailability(node=config.node, state=state, time=stamp).model_dump_json().encode()

    return MqttPublisher(
        config.mqtt,
        client_id=config.mqtt.client_id or f"smarteye-edge-{config.node}",
        availability_topic=availability_topic(config.mqtt.topic_prefix, config.node),
        spool_name=f"edge-{config.node}",
        availability_payload=availability,
    )


def _check_rules(config: EdgeConfig, labels: set[str]) -> None:
    """What the config's own validation cannot know: the model's class names, and which streams have `geo`."""
    for index, source in enumerate(config.sources):
        if source.rules is None:
            continue
        try:
            source.rules.check_against(labels, source.geo is not None)
        except ValueError as error:
            raise ConfigError(f"sources[{index}].rules.{error}") from None


def _geolocator(source: SourceConfig, mavlink: dict[str, MavlinkReader]) -> StreamGeolocator | None:
    geo = source.geo
    if geo is None:
        return None
    if geo.telemetry is None or geo.telemetry.source is TelemetrySource.KLV:
        return StreamGeolocator(geo)
    url = geo.telemetry.mavlink_url
    assert url is not None
    if url not in mavlink:
        mavlink[url] = MavlinkReader(url, stale_after_s=geo.telemetry.stale_after_s)
    return StreamGeolocator(geo, mavlink=mavlink[url])


def _malformed(geolocator: StreamGeolocator | None) -> int:
    """KLV packets the stream's parser could not decode, plus its MAVLink link's bad frames."""
    if geolocator is None:
        return 0
    bad = sum(geolocator.klv.errors.values())
    if geolocator.mavlink is not None:
        bad += geolocator.mavlink.bad_data
    return bad
