"""Builds an edge node from its config: every part made once, wired together, nothing started.

The composition of the frame path (which stages each stream runs, which sinks see the frames) is
decided here and nowhere else; `EdgeNode` (edge/node.py) only runs what it is given. Tests pass their
own detector (or other parts) through the keyword arguments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from edge.config.geo import TelemetrySource
from edge.config.node import EdgeConfig
from edge.config.source import SourceConfig
from edge.control.rules import RulesListener
from edge.detect.detector import Detector
from edge.detect.pool import DetectorPool
from edge.geo.locator import StreamGeolocator
from edge.metrics import EdgeMetrics, StreamCounters
from edge.node import EdgeNode, StreamParts
from edge.outputs.alerts import AlertSink
from edge.outputs.camera_tracking import CameraTracking
from edge.outputs.events import EventSink
from edge.outputs.mqtt_publisher import MqttPublisher
from edge.outputs.publication import Publication
from edge.outputs.status import StatusReporter
from edge.outputs.video.service import LiveVideo
from edge.pipeline import Pipeline, Sink, Stage, StreamStats, stream_stages
from edge.rules.stage import RulesStage
from edge.source.schedule import DetectionScheduler, StreamPolicy
from edge.source.slot import FrameBoard
from edge.source.supervisor import SourceSupervisor
from edge.telemetry.camera_component import MavlinkCamera, TargetBoard, VideoStream
from edge.telemetry.mavlink_reader import MavlinkReader
from edge.track.lifecycle import EventLifecycle
from edge.track.tracker import StreamTracker
from smarteye.config.loading import ConfigError
from smarteye.wire.messages import DetectionEvent, NodeAvailability, StreamStatus
from smarteye.wire.topics import availability_topic

log = logging.getLogger(__name__)


def build_node(
    config: EdgeConfig,
    *,
    detector: Detector | None = None,
    on_event: Callable[[DetectionEvent], None] | None = None,
    on_status: Callable[[StreamStatus], None] | None = None,
) -> EdgeNode:
    """The whole node for `config`; raises ModelError for a model that cannot be loaded, ConfigError for rules the
    model or the stream cannot run (an unknown label, a geofence on a stream without `geo`). `detector`, when given,
    serves every stream without its own `detector:` block."""
    detectors = _detectors(config, detector)
    _check_rules(config, {name: set(found.names.values()) for name, found in detectors.items()})
    detector = _node_detector(config, detectors)
    metrics = EdgeMetrics(config.node)
    board = FrameBoard(DetectionScheduler(_policies(config)))
    publisher = _publisher(config)
    mavlink: dict[str, MavlinkReader] = {}  # one reader per link, shared by the cameras on it
    streams: dict[str, StreamParts] = {}
    stages: dict[str, list[Stage]] = {}
    for source in config.sources:
        if not source.enabled:
            continue
        supervisor = SourceSupervisor(source, board, lambda name, health: None)  # re-pointed at the node below
        runs = detectors[source.name]
        lifecycle = EventLifecycle(config.node, source.name, runs.model_name, runs.names, config.events)
        geolocator = _geolocator(source, mavlink)
        if geolocator is not None and runs.slicer is not None:  # tiles sized in metres (detector.slicing.tile_m)
            runs.slicer.ground_sample_distance[source.name] = geolocator.ground_sample_distance
        rules = RulesStage(config.node, source.name, runs.names, source.rules, config.events.end_after_s)
        streams[source.name] = StreamParts(supervisor, lifecycle, geolocator, rules)
        stages[source.name] = stream_stages(runs, StreamTracker(config.tracker), geolocator, rules, lifecycle)
    prefix = config.mqtt.topic_prefix
    stats = {name: StreamStats() for name in streams}  # recorded by the pipeline, read by the video overlay
    out = Publication(publisher, config.node, prefix, config.snapshots, metrics)
    events = EventSink(out, on_event)
    names = {name: found.names for name, found in detectors.items()}  # a stream's own model labels its boxes
    video = (
        LiveVideo(config.video, config.node, list(streams), detector.names, metrics, stats, stream_class_names=names)
        if config.video.enabled
        else None
    )
    # clips are cut from the live video's own H.264: without video, alerts carry no clip (said once per stream)
    alerts = AlertSink(out, fanouts=video.fanouts if video is not None else None)
    cameras = _mavlink_cameras(config, mavlink, {name: parts.supervisor for name, parts in streams.items()})
    sinks: list[Sink] = [events, alerts, *([CameraTracking(cameras)] if cameras else []), *([video] if video else [])]
    # video last: it draws on the picture
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
        if video is not None:
            supervisor.on_frame = video.tap  # every source frame to the live video: it runs at the camera's rate
    geolocated = {source.name: source.geo is not None for source in config.sources}
    labels = {label for found in detectors.values() for label in found.names.values()}  # any stream's model
    pushed = RulesListener(config.node, prefix, rules, labels, geolocated, status.publish_status)
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
                detection_fps=pipeline.stats[name].fps(),
                passed_over=board.scheduler.stream(name).passed_over,
                capped_drops=board.scheduler.stream(name).capped_drops,
                floor_served=board.scheduler.stream(name).floor_served,
            )
            for name, parts in streams.items()
        }

    metrics.add_totals(counters, lambda: publisher.stats()["pending"], lambda: publisher.stats()["disk_full"],
                       lambda: publisher.stats()["unconfirmed"])  # fmt: skip
    return node


def _mavlink_cameras(
    config: EdgeConfig, mavlink: dict[str, MavlinkReader], supervisors: dict[str, SourceSupervisor]
) -> dict[str, TargetBoard]:
    """A MAVLink camera component on each drone stream's live link (camera_protocol), and its target board."""
    boards: dict[str, TargetBoard] = {}
    for source in config.sources:
        telemetry = source.geo.telemetry if source.geo is not None else None
        if not source.enabled or telemetry is None or not telemetry.camera_protocol or not telemetry.mavlink_url:
            continue
        reader = mavlink.get(telemetry.mavlink_url)
        if reader is None or reader.is_file:
            continue
        boards[source.name] = TargetBoard()
        reader.add_component(MavlinkCamera(
            partial(_advertised, config, source.name, supervisors[source.name]), boards[source.name],
            telemetry.system_id or 1,
        ))  # fmt: skip
    return boards


def _advertised(config: EdgeConfig, stream: str, supervisor: SourceSupervisor) -> VideoStream | None:
    """What the stream's camera component advertises: its MPEG-TS UDP output, where QGroundControl listens."""
    output = config.video.udp_outputs.get(stream) if config.video.enabled else None
    health = supervisor.health
    if output is None or health.width is None or health.height is None:
        return None
    port = output.rsplit(":", 1)[1]
    return VideoStream(name=stream, uri=f"udp://0.0.0.0:{port}", width=health.width, height=health.height,
                       fps=health.fps)  # fmt: skip


def _publisher(config: EdgeConfig) -> MqttPublisher:
    def availability(state: str) -> bytes:
        """`online` carries when it was said; `offline` may be the broker-sent last will, so no time."""
        stamp = time.time() if state == "online" else None
        return NodeAvailability(node=config.node, state=state, time=stamp).model_dump_json().encode()

    if config.mqtt.username is not None and config.mqtt.username != config.node:
        # MQTT 3.1.1 has no negative PUBACK: a broker with SmartEye's ACL (configs/mosquitto) silently drops
        # what a node publishes under a name other than its user name.  Say it once, at start.
        log.warning(
            "mqtt.username %r is not the node name %r: a broker with SmartEye's ACL lets a node publish only "
            "under the topics of its user name and drops the rest", config.mqtt.username, config.node,
        )  # fmt: skip
    return MqttPublisher(
        config.mqtt,
        client_id=config.mqtt.client_id or f"smarteye-edge-{config.node}",
        availability_topic=availability_topic(config.mqtt.topic_prefix, config.node),
        spool_name=f"edge-{config.node}",
        availability_payload=availability,
    )


def _detectors(config: EdgeConfig, given: Detector | None) -> dict[str, Detector]:
    """Each enabled stream's detector: the node's, or its own `detector:` override; one loaded model per runtime."""
    pool = DetectorPool()
    if given is not None:
        pool.add(given)
    return {
        source.name: given
        if given is not None and source.detector is None
        else pool.get(source.detector_settings(config.detector))
        for source in config.sources
        if source.enabled
    }


def _node_detector(config: EdgeConfig, detectors: dict[str, Detector]) -> Detector:
    """The detector whose class names the live video draws: the node's own when a stream runs it, else the first
    stream's (the video has one set of names for every stream)."""
    for source in config.sources:
        if source.enabled and source.detector is None:
            return detectors[source.name]
    return next(iter(detectors.values()), None) or Detector(config.detector)  # every source disabled


def _policies(config: EdgeConfig) -> dict[str, StreamPolicy]:
    """How each stream competes for detection (edge/source/schedule.py)."""
    return {
        source.name: StreamPolicy(source.resolved_priority, source.max_detection_fps, source.detection_weight)
        for source in config.sources
    }


def _check_rules(config: EdgeConfig, labels: dict[str, set[str]]) -> None:
    """What the config's own validation cannot know: each stream's model class names, and which streams have `geo`."""
    for index, source in enumerate(config.sources):
        if source.rules is None or source.name not in labels:
            continue
        try:
            source.rules.check_against(labels[source.name], source.geo is not None)
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
