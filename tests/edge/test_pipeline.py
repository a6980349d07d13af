"""The frame path: stages in declared order on one frame record, every sink fed, one failing sink
isolated, stage times recorded for the histograms."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge.frame import Frame
from edge.pipeline import Convert, InOrderHandoff, Pipeline, stream_stages


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


def test_detect_then_finish_is_the_whole_path_split_after_inference() -> None:
    """The node runs the two halves on different threads: detection stages in `detect`, the rest in `finish`."""
    ran: list[str] = []
    stages = stream_stages(Step("inference", ran), Step("tracking", ran), None, Step("rules", ran), Step("events", ran))
    sink = Recorder("publish")
    pipeline = Pipeline({"cam1": stages}, [sink])
    frame = pipeline.detect(_frame())
    assert ran == ["inference"] and sink.seen == [] and pipeline.stats["cam1"].processed == 0
    assert frame.detected_at is not None
    pipeline.finish(frame)
    assert ran == ["inference", "tracking", "rules", "events"] and sink.seen == [frame]
    assert frame.timings["handoff"] >= 0.0 and pipeline.stats["cam1"].processed == 1


def test_handoff_returns_results_in_ticket_order_whatever_order_they_finish_in() -> None:
    handoff = InOrderHandoff(capacity=3)
    frames = [_frame() for _ in range(3)]
    tickets = [handoff.ticket() for _ in frames]
    handoff.put(tickets[2], frames[2])
    handoff.put(tickets[1], None)  # that frame failed in detection: its place is skipped, not waited for
    assert handoff.get(0.01) == (False, None)  # the first is not done yet: nothing may overtake it
    handoff.put(tickets[0], frames[0])
    assert [handoff.get(0.01) for _ in range(3)] == [(True, frames[0]), (True, None), (True, frames[2])]
    assert handoff.in_flight == 0


def test_handoff_holds_a_worker_back_while_the_finishing_thread_is_behind() -> None:
    """Bounded: a result more than `capacity` ahead of the next one out waits (the board then drops frames)."""
    handoff = InOrderHandoff(capacity=1)
    first, second = handoff.ticket(), handoff.ticket()
    handoff.put(first, _frame())
    done = threading.Event()
    worker = threading.Thread(target=lambda: (handoff.put(second, _frame()), done.set()), daemon=True)
    worker.start()
    assert not done.wait(0.2)  # `second` is a capacity ahead of `first`, still not taken out
    assert handoff.get(1.0)[0]
    assert done.wait(5.0)
    assert handoff.get(1.0)[0]


def test_closing_the_handoff_releases_waiting_workers_and_the_reader() -> None:
    handoff = InOrderHandoff(capacity=1)
    handoff.ticket()
    blocked = handoff.ticket()
    worker = threading.Thread(target=handoff.put, args=(blocked, None), daemon=True)
    worker.start()
    handoff.close()
    worker.join(5.0)
    assert not worker.is_alive() and handoff.closed
    assert handoff.get(5.0) == (False, None)  # the first ticket never came: closed, nothing more in order


def test_handoff_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        InOrderHandoff(0)
