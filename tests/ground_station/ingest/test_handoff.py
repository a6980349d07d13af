"""The bounded hand-off between the network thread and the writer: bounded by messages, in order,
blocking (never dropping) when full, and let go only when told to give up."""

from __future__ import annotations

import threading

from ground_station.ingest.handoff import Burst, Handoff, Item


def _items(*mids: int) -> list[Item]:
    return [Item(None, None, mid, 1, 1) for mid in mids]


def test_handoff_is_bounded_by_messages_and_keeps_their_order() -> None:
    handoff = Handoff(maxsize=5)
    assert handoff.put(_items(1, 2, 3), timeout=0)
    assert not handoff.put(_items(4, 5, 6), timeout=0.01)  # 6 > 5 waiting: the network thread waits
    assert handoff.put(_items(4, 5), timeout=0) and len(handoff) == 5
    batch = handoff.get(4, timeout=0)  # across bursts, the second one split
    assert batch is not None and [item.mid for item in batch] == [1, 2, 3, 4]
    assert handoff.put(_items(6, 7, 8, 9), timeout=0)
    assert [item.mid for item in handoff.get(10, timeout=0) or []] == [5, 6, 7, 8, 9]
    assert handoff.get(10, timeout=0.01) == []  # nothing came
    assert handoff.put(_items(*range(10, 20)), timeout=0)  # larger than the bound, but nothing waits

    # A full hand-off blocks the network thread until the writer takes some.
    done = threading.Event()

    def put_more() -> None:
        handoff.put(_items(20), timeout=5)
        done.set()

    thread = threading.Thread(target=put_more)
    thread.start()
    assert not done.wait(0.1)
    assert len(handoff.get(3, timeout=0) or []) == 3
    assert not done.wait(0.1)  # 7 + 1 still over the bound
    assert len(handoff.get(3, timeout=0) or []) == 3
    assert done.wait(5)
    thread.join()
    handoff.close()
    assert [item.mid for item in handoff.get(100, timeout=1) or []] == [*range(16, 21)]
    assert handoff.get(100, timeout=1) is None  # closed and empty: the writer ends


def test_a_burst_waits_for_room_and_lets_go_only_when_giving_up() -> None:
    handoff = Handoff(maxsize=3)
    give_up = threading.Event()
    burst = Burst(handoff, give_up.is_set)
    burst.items += _items(1, 2, 3)
    burst.hand_over()
    assert len(burst) == 0 and len(handoff) == 3
    burst.hand_over()  # nothing read: nothing to hand over, returns at once
    assert len(handoff) == 3

    burst.items += _items(4)
    handed = threading.Event()
    thread = threading.Thread(target=lambda: (burst.hand_over(), handed.set()))
    thread.start()
    assert not handed.wait(0.7)  # full: still waiting after more than one put timeout, nothing dropped
    assert [item.mid for item in handoff.get(2, timeout=0) or []] == [1, 2]
    assert handed.wait(5)
    thread.join()
    assert [item.mid for item in handoff.get(10, timeout=0) or []] == [3, 4]

    handoff.put(_items(5, 6, 7), timeout=0)
    burst.items += _items(8)
    give_up.set()  # stopping: the items are let go (unacknowledged, so the broker sends them again)
    burst.hand_over()
    assert len(burst) == 0 and [item.mid for item in handoff.get(10, timeout=0) or []] == [5, 6, 7]
