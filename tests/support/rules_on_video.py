"""The real detector, tracker and rules stage on a range of a video file's frames, decoded with PyAV: what a
stream's pipeline does, minus the network, so a count made by watching the same frames can be compared."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av

from edge.config import DetectorConfig
from edge.config.tracking import TrackerConfig
from edge.detect.detector import Detector
from edge.frame import Frame
from edge.pipeline import Convert
from edge.rules.stage import RulesStage
from edge.track.tracker import StreamTracker
from smarteye.wire.messages import Alert, ZoneCounts
from smarteye.wire.rules import RuleSet


@dataclass
class Judged:
    """What the rules found on the range: the final counts, entries and exits per zone (frame index, track id)
    read from each track's `zones` as the events stage sees them, and every alert message."""

    counts: ZoneCounts | None
    entries: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    exits: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


def judge_frames(
    video: Path, first: int, last: int, rules: RuleSet, model: Path, fps: float, imgsz: int = 640
) -> Judged:
    """Frames `first`..`last` (inclusive, 0-based decode order) at `fps` of capture time, tracked from scratch."""
    detector = Detector(DetectorConfig(model=str(model), imgsz=imgsz))
    stages = [Convert(), detector, StreamTracker(TrackerConfig())]
    stage = RulesStage("test", "video", detector.names, rules)
    judged = Judged(counts=None)
    inside: dict[tuple[str, int], bool] = {}
    zones = [z.name for z in rules.zones]
    with av.open(str(video)) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index < first:
                continue
            if index > last:
                break
            frame = Frame.from_av("video", index, index / fps, index / fps, decoded)
            for step in [*stages, stage]:
                frame = step.process(frame)
            judged.alerts += frame.alerts
            seen = {box.track_id for box in frame.tracks}
            for box in frame.tracks:
                for zone in zones:
                    was_in, now_in = inside.get((zone, box.track_id), False), zone in box.zones
                    if now_in and not was_in:
                        judged.entries.setdefault(zone, []).append((index, box.track_id))
                    if was_in and not now_in:
                        judged.exits.setdefault(zone, []).append((index, box.track_id))
                    inside[(zone, box.track_id)] = now_in
            for (zone, track_id), was_in in list(inside.items()):
                if was_in and track_id not in seen and stage.objects.get(track_id) is None:
                    judged.exits.setdefault(zone, []).append((index, track_id))  # lost inside, then forgotten
                    inside[(zone, track_id)] = False
            judged.counts = stage.counts(frame.capture_time)
    return judged
