"""Latest-frame-wins hand-off: bounded, counts drops, fair across streams, lossless when asked."""

from __future__ import annotations

import threading
import time

from edge.frame import Frame
from edge.source.slot import FrameBoard


def _frame(stream: str, seq: int, t: float) -> Frame:
    return Frame(stream, seq, t, None, 4, 4)


def test_latest_frame_wins_and_drops_are_counted() -> None:
    board = FrameBoard()
    for seq in range(10):
        board.put(_frame("a", seq, float(seq)))
    taken = board.take(0.1)
    assert taken is not None and taken.seq == 9
    assert board.dropped["a"] == 9
    assert board.take(0.01) is None


def test_streams_are_served_round_robin() -> None:
    """A camera that always has a fresh frame cannot starve the others."""
    board = FrameBoard()
    served = []
    for seq in range(6):
        board.put(_frame("fast", seq, float(seq)))
        board.put(_frame("fast", seq, float(seq) + 0.5))  # twice the rate
        if seq % 2 == 0:
            board.put(_frame("slow", seq, float(seq)))
        board.put(_frame("mid", seq, float(seq)))
        taken = board.take(0.1)
        assert taken is not None
        served.append(taken.stream)
    assert served[:3] == ["fast", "slow", "mid"]
    assert served.count("fast") == 2 and served.count("mid") == 2 and served.count("slow") == 2


def test_blocking_put_loses_nothing() -> None:
    board = FrameBoard()
    received: list[int] = []

    def consume() -> None:
        while len(received) < 50:
            frame = board.take(1.0)
            if frame is not None:
                received.append(frame.seq)
                time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for seq in range(50):
        board.put(_frame("file", seq, float(seq)), block=True)
    consumer.join(10)
    assert received == list(range(50))
    assert board.dropped.get("file", 0) == 0
