"""The detection scheduling policy on constructed times: priority first, a floor so no stream starves, weighted
fairness among equals, rate caps, no catch-up burst after idling; and the board keeping frames latest-wins."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from edge.frame import Frame
from edge.source.schedule import DetectionScheduler, StreamPolicy
from edge.source.slot import FrameBoard


def _overload(scheduler: DetectionScheduler, streams: list[str], seconds: float, detect_s: float) -> Counter[str]:
    """Every stream always has a fresh frame (cameras faster than detection); detection takes `detect_s` a frame."""
    served: Counter[str] = Counter()
    now = 0.0
    while now < seconds:
        chosen = scheduler.pick(streams, now)
        if chosen is None:  # every stream rate-capped: detection idles until the next slot
            ready = scheduler.next_ready(streams, now)
            assert ready is not None and ready > now
            now = ready
            continue
        scheduler.served(chosen, now)
        served[chosen] += 1
        now += detect_s
    return served


def test_higher_priority_is_served_first_but_the_lower_is_never_starved() -> None:
    scheduler = DetectionScheduler({"drone": StreamPolicy(priority=2), "gate": StreamPolicy(priority=1)})
    served = _overload(scheduler, ["gate", "drone"], seconds=20, detect_s=0.1)  # 10 detections a second
    assert served["drone"] + served["gate"] == 200
    # the floor: about one detection a second for the lower priority, the rest to the drone
    assert 18 <= served["gate"] <= 22
    assert served["drone"] >= 178
    assert scheduler.turns["gate"].floor_served == served["gate"]
    assert scheduler.turns["gate"].passed_over > 150


def test_on_a_slow_detector_the_floor_takes_at_most_one_detection_in_eleven() -> None:
    """Two detections a second: a floor of one a second would hand the lower priority half of them."""
    scheduler = DetectionScheduler({"drone": StreamPolicy(priority=2), "gate": StreamPolicy(priority=1)})
    served = _overload(scheduler, ["gate", "drone"], seconds=60, detect_s=0.5)
    assert served["gate"] == pytest.approx(120 / 11, abs=1)
    assert served["drone"] == 120 - served["gate"]


def test_equal_priorities_share_by_weight() -> None:
    scheduler = DetectionScheduler({"a": StreamPolicy(weight=2.0), "b": StreamPolicy(), "c": StreamPolicy()})
    served = _overload(scheduler, ["a", "b", "c"], seconds=10, detect_s=0.05)
    assert served["a"] == pytest.approx(2 * served["b"], abs=2)
    assert served["b"] == pytest.approx(served["c"], abs=1)


def test_round_robin_among_equals_in_the_order_first_seen() -> None:
    scheduler = DetectionScheduler()
    order = []
    for step in range(6):
        chosen = scheduler.pick(["x", "y", "z"], step * 0.01)
        assert chosen is not None
        scheduler.served(chosen, step * 0.01)
        order.append(chosen)
    assert order == ["x", "y", "z", "x", "y", "z"]


def test_rate_cap_holds_a_stream_to_its_fps_and_gives_the_rest_to_the_others() -> None:
    scheduler = DetectionScheduler({"drone": StreamPolicy(priority=5, max_fps=4.0), "gate": StreamPolicy(priority=1)})
    served = _overload(scheduler, ["drone", "gate"], seconds=10, detect_s=0.05)  # 20 detections a second
    assert served["drone"] == pytest.approx(40, abs=1)  # capped although it has the higher priority
    assert served["gate"] == pytest.approx(160, abs=2)


def test_rate_cap_alone_leaves_detection_idle_between_slots() -> None:
    scheduler = DetectionScheduler({"cam": StreamPolicy(max_fps=5.0)})
    served = _overload(scheduler, ["cam"], seconds=10, detect_s=0.01)
    assert served["cam"] == pytest.approx(50, abs=1)


def test_rate_cap_keeps_its_rate_when_frames_do_not_line_up_with_the_slots() -> None:
    """A 25 fps camera capped at 10: frames every 40 ms, slots every 100 ms; a naive 'interval since the last
    serve' would give 8.3 fps."""
    scheduler = DetectionScheduler({"cam": StreamPolicy(max_fps=10.0)})
    served = 0
    for index in range(250):  # 10 s of frames
        now = index * 0.04
        if scheduler.pick(["cam"], now) == "cam":
            scheduler.served("cam", now)
            served += 1
    assert served == pytest.approx(100, abs=1)


def test_a_stream_back_from_idle_does_not_get_a_burst() -> None:
    scheduler = DetectionScheduler()
    _overload(scheduler, ["a", "b"], seconds=1, detect_s=0.01)
    now = 1.0
    for _ in range(100):  # b has no frames for a while (its source reconnects)
        scheduler.served("a", now)
        now += 0.01
    scheduler.idle("b")
    order = []
    for _ in range(6):
        chosen = scheduler.pick(["a", "b"], now)
        assert chosen is not None
        scheduler.served(chosen, now)
        order.append(chosen)
        now += 0.01
    assert order.count("b") == 3 and order.count("a") == 3


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        StreamPolicy(weight=0)
    with pytest.raises(ValueError, match="max_fps"):
        StreamPolicy(max_fps=0)


def _frame(stream: str, seq: int) -> Frame:
    return Frame(stream, seq, time.time(), None, 4, 4)


def test_board_serves_the_higher_priority_and_keeps_frames_latest_wins() -> None:
    board = FrameBoard(DetectionScheduler({"drone": StreamPolicy(priority=2)}))
    for seq in range(5):
        board.put(_frame("gate", seq))
        board.put(_frame("drone", seq))
    first = board.take(0.1)
    assert first is not None and (first.stream, first.seq) == ("drone", 4)  # newest frame of the top priority
    second = board.take(0.1)
    assert second is not None and (second.stream, second.seq) == ("gate", 4)
    assert board.dropped == {"gate": 4, "drone": 4}
    assert board.take(0.01) is None


def test_board_holds_a_capped_stream_until_its_slot_with_its_newest_frame() -> None:
    board = FrameBoard(DetectionScheduler({"cam": StreamPolicy(max_fps=5.0)}))
    board.put(_frame("cam", 0))
    assert board.take(0.1) is not None
    for seq in range(1, 4):  # arrive inside the 200 ms slot: held, each replacing the last
        board.put(_frame("cam", seq))
    assert board.take(0.02) is None  # still capped
    taken = board.take(1.0)  # the wait ends at the slot, not at the timeout
    assert taken is not None and taken.seq == 3
    assert board.scheduler.turns["cam"].capped_drops == 2
    assert board.dropped["cam"] == 2


def test_board_take_wakes_for_a_frame_put_while_waiting() -> None:
    board = FrameBoard()
    timer = threading.Timer(0.05, lambda: board.put(_frame("late", 0)))
    timer.start()
    taken = board.take(5.0)
    timer.join()
    assert taken is not None and taken.stream == "late"
