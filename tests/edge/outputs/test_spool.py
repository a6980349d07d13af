"""The on-disk event spool: FIFO order, the bound (drop oldest, counted), persistence, thread safety."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge.outputs.spool import Spool


def _payloads(spool: Spool, limit: int = 10_000) -> list[bytes]:
    return [m.payload for m in spool.peek(limit)]


def test_fifo_order_peek_and_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_messages=100)
    seqs = [spool.append("a/b", f"m{i}".encode(), qos=1) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert len(spool) == 5
    msgs = spool.peek(10)
    assert [m.seq for m in msgs] == seqs
    assert [m.payload for m in msgs] == [f"m{i}".encode() for i in range(5)]
    assert all(m.topic == "a/b" and m.qos == 1 and m.retain is False for m in msgs)
    assert [m.seq for m in spool.peek(2)] == seqs[:2]
    assert [m.seq for m in spool.peek(10, after_seq=seqs[2])] == seqs[3:]
    assert spool.peek(0) == []

    assert spool.ack(seqs[1]) is True
    assert spool.ack(seqs[1]) is False  # already gone
    assert len(spool) == 4
    assert [m.seq for m in spool.peek(10)] == [seqs[0], *seqs[2:]]
    assert spool.ack_many([seqs[0], seqs[2], 999_999]) == 2
    assert _payloads(spool) == [b"m3", b"m4"]
    spool.close()


def test_seq_strictly_increasing_even_after_emptying(tmp_path: Path) -> None:
    """A sender resumes with peek(after_seq=last_sent); a reused seq would be skipped forever."""
    path = tmp_path / "s.sqlite"
    spool = Spool(path, max_messages=100)
    first = spool.append("t", b"1", qos=1)
    spool.ack(first)
    assert len(spool) == 0
    second = spool.append("t", b"2", qos=1)
    assert second > first
    spool.ack(second)
    spool.close()
    spool = Spool(path, max_messages=100)
    assert spool.last_seq == second
    assert spool.append("t", b"3", qos=1) > second
    spool.close()


def test_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_messages=10)
    for i in range(25):
        spool.append("t", str(i).encode(), qos=1)  # never raises when full
    assert len(spool) == 10
    assert spool.dropped == 15
    assert _payloads(spool) == [str(i).encode() for i in range(15, 25)]


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "s.sqlite"  # parents are created
    spool = Spool(path, max_messages=10)
    for i in range(12):
        spool.append(f"t/{i}", str(i).encode(), qos=1, retain=i == 11)
    spool.ack(spool.peek(1)[0].seq)
    before = spool.peek(100)
    spool.close()
    spool.close()  # idempotent

    reopened = Spool(path, max_messages=10)
    assert reopened.peek(100) == before
    assert len(reopened) == 9
    assert reopened.dropped == 2
    assert reopened.peek(100)[-1].retain is True
    reopened.close()

    # A lower limit takes effect on open; the trimmed messages are counted as dropped.
    smaller = Spool(path, max_messages=5)
    assert len(smaller) == 5
    assert smaller.dropped == 6
    assert _payloads(smaller) == [str(i).encode() for i in range(7, 12)]
    smaller.close()


def test_closed_spool_refuses_use(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_messages=10)
    spool.close()
    with pytest.raises(RuntimeError):
        spool.append("t", b"x", qos=1)


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    spool = Spool(path, max_messages=10)
    assert len(spool) == 0
    spool.append("t", b"x", qos=1)
    assert len(spool) == 1
    assert list(tmp_path.glob("s.sqlite.corrupt-*"))
    spool.close()


def test_thread_safety(tmp_path: Path) -> None:
    """Concurrent producers and an acking consumer: no lost or duplicated seqs, per-producer order kept."""
    spool = Spool(tmp_path / "s.sqlite", max_messages=100_000)
    producers, per_producer = 4, 200
    acked: list[tuple[int, bytes]] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def produce(pid: int) -> None:
        try:
            for i in range(per_producer):
                spool.append("t", f"{pid}:{i}".encode(), qos=1)
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)

    def consume() -> None:
        try:
            last = 0
            while True:
                finished = done.is_set()
                batch = spool.peek(50, after_seq=last)
                for msg in batch:
                    acked.append((msg.seq, msg.payload))
                    last = msg.seq
                spool.ack_many(m.seq for m in batch)
                if finished and not batch:
                    return
        except BaseException as error:
            errors.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    consumer.join(timeout=30)
    assert not errors
    assert len(spool) == 0
    seqs = [s for s, _ in acked]
    assert seqs == sorted(seqs) and len(set(seqs)) == producers * per_producer
    for pid in range(producers):
        mine = [int(p.split(b":")[1]) for _, p in acked if p.startswith(f"{pid}:".encode())]
        assert mine == list(range(per_producer))
    spool.close()


def test_one_user_per_spool_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first = Spool(path, max_messages=10)
    with pytest.raises(RuntimeError, match="in use"):
        Spool(path, max_messages=10)
    first.close()
    Spool(path, max_messages=10).close()
