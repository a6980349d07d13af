"""What the sinks that publish the node's own messages (events, alerts) share: the node's QoS-1 publisher,
who they speak for (node name, topic prefix), how snapshots are made, and the metrics they feed."""

from __future__ import annotations

from dataclasses import dataclass

from edge.config.node import SnapshotConfig
from edge.metrics import EdgeMetrics
from edge.outputs.mqtt_publisher import MqttPublisher


@dataclass(frozen=True, slots=True)
class Publication:
    """Built once by the factory and handed to every publishing sink, so they cannot disagree on any of it."""

    publisher: MqttPublisher
    node: str
    topic_prefix: str
    snapshots: SnapshotConfig
    metrics: EdgeMetrics | None = None


class PublishingSink:
    """Base of the publishing sinks: the parts of a `Publication` as the attributes they use."""

    def __init__(self, out: Publication) -> None:
        self.publisher, self.node, self.prefix = out.publisher, out.node, out.topic_prefix
        self.snapshots, self.metrics = out.snapshots, out.metrics
