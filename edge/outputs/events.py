"""Sink: a frame's lifecycle events to MQTT (QoS 1, spooled), each `new` event with a JPEG snapshot of
the frame that confirmed the object."""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from edge.frame import Frame
from edge.outputs.publication import Publication, PublishingSink
from smarteye.wire.messages import DetectionEvent, EventType
from smarteye.wire.topics import events_topic, snapshot_topic


class EventSink(PublishingSink):
    """Publishes events as they happen: from frames, and from the node when objects end without one."""

    name = "publish"

    def __init__(self, out: Publication, on_event: Callable[[DetectionEvent], None] | None = None) -> None:
        super().__init__(out)
        self.on_event = on_event
        self.published = 0

    def consume(self, frame: Frame) -> None:
        """Runs before the video sink, which draws on the picture the snapshot must show clean."""
        self.publish(frame.events)
        confirmed = [e for e in frame.events if e.type is EventType.NEW]
        if confirmed and self.snapshots.enabled:
            jpeg = self.snapshot(frame.bgr())  # one encode per frame, however many objects it confirmed
            for event in confirmed:
                self.publisher.publish_event(snapshot_topic(self.prefix, self.node, event.stream, event.event_id), jpeg)

    def publish(self, events: list[DetectionEvent]) -> None:
        now = time.time()
        for event in events:
            topic = events_topic(self.prefix, self.node, event.stream)
            self.publisher.publish_event(topic, event.model_dump_json().encode())
            self.published += 1
            if self.metrics is not None and event.type is not EventType.END:  # an end's capture is its last sighting
                self.metrics.observe_published(event.stream, (now - event.capture_time,))
            if self.on_event is not None:
                self.on_event(event)

    def snapshot(self, image: np.ndarray) -> bytes:
        """The frame that confirmed objects, downscaled and JPEG-encoded for the spool."""
        settings = self.snapshots
        height, width = image.shape[:2]
        scale = min(1.0, settings.max_width / width)
        if scale < 1.0:
            image = cv2.resize(image, (settings.max_width, round(height * scale)), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, settings.quality])
        if not ok:
            raise ValueError("JPEG encoding of the snapshot failed")
        return jpeg.tobytes()
