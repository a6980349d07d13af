"""Sink: the alerts a frame caused, their evidence (a snapshot, a clip) and the zone counts, to MQTT.

Everything goes through the node's QoS-1 spool (`MqttPublisher.publish_event`), like events: accepted once on
disk, delivered in order. Evidence is published before the message that announces it, so a receiver that sees
`snapshot: true` or a `clip` on an alert already has (or is about to be handed, in the same order) the JPEG or MP4:

- a `start`: its JPEG on the alert-snapshots topic (the zone or line and the objects drawn), then the message with
  `snapshot: true` (false when snapshots are off or the picture could not be encoded);
- then, when the stream's rules want clips, the stream's `ClipRecorder` is asked for one; once recorded (after
  `post_s`, on the recorder's thread) the MP4 goes on the clips topic, then one `update` message for the alert
  with `clip` set and the id `<alert_id>:clip` (see docs/mqtt.md);
- `frame.counts` on the counts topic.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Mapping

from edge.frame import Frame
from edge.outputs.alert_snapshot import alert_snapshot
from edge.outputs.publication import Publication, PublishingSink
from edge.outputs.video.clips import ClipLimits, ClipRecorder
from smarteye.media.fanout import PacketFanout
from smarteye.wire.messages import Alert, AlertClip, AlertState, ZoneCounts
from smarteye.wire.rules import ClipSettings, RuleSet
from smarteye.wire.topics import alert_snapshot_topic, alerts_topic, clip_topic, counts_topic

log = logging.getLogger("edge.outputs.alerts")

CLIP_ID_SUFFIX = "clip"


def wanted_clips(rules: RuleSet | None) -> ClipSettings | None:
    """The clip settings of a rule set that can raise alerts and wants clips with them; None otherwise."""
    if rules is None or not rules.clip.enabled or not any(rule.enabled for rule in rules.rules):
        return None
    return rules.clip


def clip_announcement(start: Alert, clip: AlertClip) -> Alert:
    """The `update` that attaches a clip to an alert. It reports the start (its seq, objects and capture time)
    with the clip added: the rules stage numbers the lifecycle messages, so this one takes no number of its own
    and is told apart by its id, `<alert_id>:clip` (one clip per alert, so the id is unique)."""
    return start.model_copy(
        update={
            "id": f"{start.alert_id}:{CLIP_ID_SUFFIX}",
            "state": AlertState.UPDATE,
            "clip": clip,
        }
    )


class AlertSink(PublishingSink):
    """Publishes each frame's alerts (with snapshots and clips) and zone counts.

    `fanouts`: the encoded video of each stream (the node's live video); the sink keeps a clip recorder on each.
    A stream without one (video disabled) gets alerts without clips, and the sink says why once.
    """

    name = "alerts"

    def __init__(
        self,
        out: Publication,
        fanouts: Mapping[str, PacketFanout] | None = None,
        clip_limits: ClipLimits | None = None,
        no_clips_reason: str = "the node has no live video (video.enabled: false)",
    ) -> None:
        super().__init__(out)
        metrics = out.metrics
        self.recorders = {
            stream: ClipRecorder(
                fanout, self.publish_clip, clip_limits,
                functools.partial(metrics.count_clip, stream) if metrics is not None else None,
            )
            for stream, fanout in (fanouts or {}).items()
        }  # fmt: skip
        self.no_clips_reason = no_clips_reason
        self._told_no_clips: set[str] = set()
        self._lock = threading.Lock()  # the counters: clips are announced from the recorders' threads
        self.published = 0
        self.snapshots_published = 0
        self.clips_published = 0
        self.counts_published = 0

    def consume(self, frame: Frame) -> None:
        """Runs before the video sink, which draws on the picture the snapshot must show clean."""
        clips = wanted_clips(frame.rules)
        recorder = self.recorders.get(frame.stream)
        if recorder is not None:
            recorder.want(clips)  # every frame: rules pushed at run time switch recording on and off
        elif clips is not None and frame.stream not in self._told_no_clips:
            self._told_no_clips.add(frame.stream)
            log.warning("stream %s: its rules want alert clips, but %s: alerts carry no clip", frame.stream,
                        self.no_clips_reason)  # fmt: skip
        for alert in frame.alerts:
            if alert.state is AlertState.START:
                alert = alert.model_copy(update={"snapshot": self._snapshot(frame, alert)})
            self._publish(alert)
            if alert.state is AlertState.START and clips is not None and recorder is not None:
                recorder.request(alert, clips.pre_s, clips.post_s)
        if frame.counts is not None:
            self.publish_counts(frame.counts)

    def publish(self, alerts: list[Alert]) -> None:
        """Alerts raised outside a frame (e.g. the `end`s when the node stops): messages only."""
        for alert in alerts:
            self._publish(alert)

    def publish_counts(self, counts: ZoneCounts) -> None:
        self.publisher.publish_event(
            counts_topic(self.prefix, self.node, counts.stream), counts.model_dump_json().encode()
        )
        with self._lock:
            self.counts_published += 1

    def publish_clip(self, start: Alert, mp4: bytes, clip: AlertClip) -> None:
        """A recorder's finished clip (on its thread): the MP4, then the `update` that announces it."""
        self.publisher.publish_event(clip_topic(self.prefix, self.node, start.stream, start.alert_id), mp4)
        with self._lock:
            self.clips_published += 1
        self._publish(clip_announcement(start, clip))

    def stop(self) -> None:
        """Stop the recorders; clips being recorded are cut short and still published (publisher still up)."""
        for recorder in self.recorders.values():
            recorder.stop()

    def _snapshot(self, frame: Frame, alert: Alert) -> bool:
        """Publish the start's JPEG; whether it was."""
        if not self.snapshots.enabled:
            return False
        try:
            jpeg = alert_snapshot(frame.bgr(), alert, frame.rules, self.snapshots)
        except Exception:  # a picture that cannot be drawn costs the snapshot, not the alert
            log.exception("stream %s: no snapshot for alert %s", frame.stream, alert.alert_id)
            return False
        self.publisher.publish_event(alert_snapshot_topic(self.prefix, self.node, alert.stream, alert.alert_id), jpeg)
        with self._lock:
            self.snapshots_published += 1
        return True

    def _publish(self, alert: Alert) -> None:
        message = alert.model_copy(update={"publish_time": time.time()})
        self.publisher.publish_event(
            alerts_topic(self.prefix, self.node, alert.stream), message.model_dump_json().encode()
        )
        with self._lock:
            self.published += 1
        if self.metrics is not None:
            self.metrics.count_alert(alert.stream, alert.state.value)
