"""The frame path: stages in declared order on one frame record, every sink fed, one failing sink
isolated, stage times recorded for the histograms."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.frame import Frame
from edge.pipeline import Convert, Pipeline, stream_stages


class Step:
    """A stage that notes its name in a shared list, to check the order stages ran in."""

    def __init__(self, name: str, ran: list[str]) -> None:
        self.name, self.ran = name, ran

    def process(self, frame: Frame) -> Frame:
        self.ran.append(self.name)
        return frame


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[Frame] = []

    def consume(self, frame: Frame) -> None:
        self.seen.append(frame)


class Broken:
    name = "broken"

    def consume(self, frame: Frame) -> None:
        raise RuntimeError("sink down")


def _frame(stream: str = "cam1") -> Frame:
    return Frame.from_bgr(stream, 1, time.time() - 0.05, 0.0, np.zeros((48, 64, 3), np.uint8))


def test_stages_run_in_declared_order_and_every_sink_gets_the_record() -> None:
    ran: list[str] = []
    stages = stream_stages(Step("inference", ran), Step("tracking", ran), None, Step("rules", ran), Step("events", ran))
    assert isinstance(stages[0], Convert)
    first, second = Recorder("publish"), Recorder("video")
    pipeline = Pipeline({"cam1": stages}, [first, Broken(), second])
    frame = pipeline.process(_frame())
    assert ran == ["inference", "tracking", "rules", "events"]
    assert first.seen == [frame] and second.seen == [frame]  # the broken sink between them stopped nothing
    for name in ("wait", "convert", "inference", "tracking", "rules", "events", "publish", "broken", "video"):
        assert isinstance(frame.timings[name], float), name
    assert frame.timings["wait"] >= 0.04  # captured 50 ms before it was taken
    stats = pipeline.stats["cam1"]
    assert stats.processed == 1 and stats.median_latency_s() == pytest.approx(0.05, abs=0.04)


def test_geolocation_then_rules_run_between_tracking_and_events_when_the_stream_has_it() -> None:
    ran: list[str] = []
    names = ("inference", "tracking", "geolocation", "rules", "events")
    stages = stream_stages(*(Step(name, ran) for name in names))
    Pipeline({"drone": stages}, []).process(_frame("drone"))
    assert ran == list(names)


def test_a_failing_stage_skips_the_frame_before_any_sink() -> None:
    class Failing:
        name = "tracking"

        def process(self, frame: Frame) -> Frame:
            raise ValueError("bad frame")

    sink = Recorder("publish")
    pipeline = Pipeline({"cam1": [Failing()]}, [sink])
    with pytest.raises(ValueError, match="bad frame"):
        pipeline.process(_frame())
    assert sink.seen == [] and pipeline.stats["cam1"].processed == 0


def test_stats_handed_in_are_the_ones_recorded() -> None:
    """The node shares one record per stream between the pipeline and the video overlay (recorded once per frame)."""
    from edge.pipeline import StreamStats

    shared = {"cam1": StreamStats()}
    pipeline = Pipeline({"cam1": [Convert()]}, [], stats=shared)
    pipeline.process(_frame())
    assert pipeline.stats["cam1"] is shared["cam1"] and shared["cam1"].processed == 1
