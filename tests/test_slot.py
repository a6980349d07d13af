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


def test_oldest_pending_stream_is_served_first() -> None:
    board = FrameBoard()
    board.put(_frame("late", 1, 5.0))
    board.put(_frame("early", 1, 1.0))
    first, second = board.take(0.1), board.take(0.1)
    assert first is not None and second is not None
    assert (first.stream, second.stream) == ("early", "late")


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
