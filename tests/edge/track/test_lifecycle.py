"""Event lifecycle (pure logic): new after confirmation, rate-limited updates, end when gone."""

from __future__ import annotations

from edge.config.tracking import EventsConfig
from edge.frame import Frame
from edge.track.lifecycle import EventLifecycle
from edge.track.tracker import TrackedBox
from smarteye.wire.messages import EndReason, EventType

NAMES = {0: "person", 2: "car"}


def _frame(t: float) -> Frame:
    return Frame("cam", int(t * 10), capture_time=t, pts=t, width=1000, height=1000)


def _box(tid: int, x: float, score: float = 0.9, cls: int = 0) -> TrackedBox:
    return TrackedBox(tid, x, 100, x + 50, 200, score, cls)


def _lifecycle(**overrides: float) -> EventLifecycle:
    config = EventsConfig(min_hits=3, min_score=0.5, end_after_s=2.0, update_interval_s=1.0, **overrides)
    return EventLifecycle("node", "cam", "yolov8n.pt", NAMES, config)


def test_new_only_after_min_hits_and_score() -> None:
    lc = _lifecycle()
    assert lc.observe(_frame(0.0), [_box(1, 10)], 0.01) == []
    assert lc.observe(_frame(0.1), [_box(1, 10)], 0.11) == []
    events = lc.observe(_frame(0.2), [_box(1, 10)], 0.21)
    assert [e.type for e in events] == [EventType.NEW]
    new = events[0]
    assert (new.label, new.track_id, new.seq, new.id) == ("person", 1, 0, f"{new.event_id}:0")
    assert (new.capture_time, new.first_seen, new.frame_width) == (0.2, 0.0, 1000)
    assert new.box_norm.x1 == 0.01 and new.box.x2 == 60


def test_low_score_object_is_never_reported() -> None:
    lc = _lifecycle()
    events = [e for t in range(30) for e in lc.observe(_frame(t / 10), [_box(1, 10, score=0.3)], 0)]
    events += lc.expire(100.0, EndReason.GONE)
    assert events == []


def test_update_needs_interval_and_real_change() -> None:
    lc = _lifecycle()
    for t in (0.0, 0.1, 0.2):
        lc.observe(_frame(t), [_box(1, 10)], 0)
    # Still, for a long time: no update.
    assert [e for t in range(3, 40) for e in lc.observe(_frame(t / 10), [_box(1, 10)], 0)] == []
    # Moves a lot but within the interval after the first move: one update, not one per frame.
    moved = [e for t in range(40, 50) for e in lc.observe(_frame(t / 10), [_box(1, 10 + (t - 39) * 20)], 0)]
    assert [e.type for e in moved] == [EventType.UPDATE]
    assert moved[0].seq == 1 and moved[0].event_id == lc.observe(_frame(6.0), [_box(1, 400)], 0)[0].event_id


def test_end_when_gone_and_ids_are_stable() -> None:
    lc = _lifecycle()
    new = [e for t in (0.0, 0.1, 0.2) for e in lc.observe(_frame(t), [_box(7, 10)], 0)]
    assert lc.observe(_frame(1.0), [], 0) == []  # not yet gone
    ended = lc.observe(_frame(2.5), [], 0)
    assert [e.type for e in ended] == [EventType.END]
    assert ended[0].event_id == new[0].event_id and ended[0].end_reason is EndReason.GONE
    assert ended[0].last_seen == 0.2 and len(lc) == 0


def test_label_follows_accumulated_score_not_one_frame() -> None:
    lc = _lifecycle()
    for t, cls in ((0.0, 2), (0.1, 2), (0.2, 2)):
        lc.observe(_frame(t), [_box(1, 10, cls=cls)], 0)
    odd = lc.observe(_frame(1.5), [_box(1, 10, cls=0, score=0.6)], 0)
    assert odd == []  # one 'person' frame does not relabel a 'car'
    end = lc.end_all(EndReason.SHUTDOWN)
    assert end[0].label == "car" and end[0].end_reason is EndReason.SHUTDOWN


def test_tracks_are_bounded() -> None:
    lc = _lifecycle(max_tracks_per_stream=5)
    events = []
    for t in range(3):
        events += lc.observe(_frame(t / 10), [_box(tid, tid * 60) for tid in range(1, 6)], 0)
    assert [e.type for e in events] == [EventType.NEW] * 5
    events = lc.observe(_frame(0.3), [_box(tid, tid * 60) for tid in range(1, 9)], 0)
    assert len(lc) == 5
    evicted = [e for e in events if e.end_reason is EndReason.EVICTED]
    assert len(evicted) == 3 and {e.type for e in evicted} == {EventType.END}
