"""The spool's end-to-end confirmation state: digests, sent rows, confirm, requeue, and the in-place
migration of a spool file written by the older schema (no `digest`, no `sent_at`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.outputs.spool import Spool
from smarteye.wire.confirm import digest_key, message_digest

_OLD_SCHEMA = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_sent_rows_leave_peek_but_stay_until_confirmed(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite", max_messages=100) as spool:
        seqs = [spool.append("p/n/events/c", f"m{i}".encode(), qos=1) for i in range(4)]
        assert spool.mark_sent(seqs[:3]) == 3
        assert spool.mark_sent(seqs[:1]) == 0  # already sent
        assert [m.seq for m in spool.peek(10)] == [seqs[3]]  # only unsent rows are offered
        assert len(spool) == 4 and spool.unconfirmed == 3  # sent rows still count: they are not confirmed

        # The station names what it stored by digest; an unknown digest is ignored.
        assert spool.confirm([message_digest("p/n/events/c", b"m0"), message_digest("p/n/events/c", b"zz")]) == 1
        assert len(spool) == 3 and spool.unconfirmed == 2
        # A confirmation deletes an unsent row too (the station has it: sending it again would not help).
        assert spool.confirm([message_digest("p/n/events/c", b"m3")]) == 1
        assert spool.peek(10) == []


def test_requeue_sends_unconfirmed_rows_again(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite", max_messages=100) as spool:
        seqs = [spool.append("t", f"m{i}".encode(), qos=1) for i in range(3)]
        spool.mark_sent(seqs)
        assert spool.peek(10) == []
        assert spool.requeue_sent(older_than=0.0) == 0  # none was sent before 1970
        assert spool.requeue_sent() == 3
        assert [m.seq for m in spool.peek(10)] == seqs and spool.unconfirmed == 0
        spool.mark_sent(seqs[:1])
        assert spool.requeue_sent(older_than=2**40) == 1  # sent before a far future time: all sent ones


def test_sent_state_survives_a_restart(tmp_path: Path) -> None:
    """A new run must know which rows wait for a confirmation (it sends them again after connecting)."""
    path = tmp_path / "s.sqlite"
    with Spool(path, max_messages=100) as spool:
        seqs = [spool.append("t", f"m{i}".encode(), qos=1) for i in range(2)]
        spool.mark_sent(seqs[:1])
    with Spool(path, max_messages=100) as spool:
        assert spool.unconfirmed == 1 and [m.seq for m in spool.peek(10)] == seqs[1:]


def test_bound_counts_sent_and_unsent_rows(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite", max_messages=3) as spool:
        seqs = [spool.append("t", f"m{i}".encode(), qos=1) for i in range(3)]
        spool.mark_sent(seqs[:2])
        spool.append("t", b"m3", qos=1)  # the oldest (sent, unconfirmed) goes, counted
        assert len(spool) == 3 and spool.dropped == 1 and spool.unconfirmed == 1
        assert spool.confirm([message_digest("t", b"m0")]) == 0


def test_old_schema_spool_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_SCHEMA)
    conn.executemany(
        "INSERT INTO messages(topic, payload, qos, retain, created) VALUES (?, ?, 1, 0, 1.0)",
        [("p/n/events/c", b"old-0"), ("p/n/snapshots/c/e1", b"\xff\xd8old-1")],
    )
    conn.commit()
    conn.close()

    with Spool(path, max_messages=100) as spool:
        waiting = spool.peek(10)
        assert [m.payload for m in waiting] == [b"old-0", b"\xff\xd8old-1"]  # kept, and unsent
        assert spool.unconfirmed == 0
        spool.mark_sent([waiting[0].seq])
        # The old rows got their digests: the station's confirmation deletes them.
        assert spool.confirm([message_digest("p/n/snapshots/c/e1", b"\xff\xd8old-1")]) == 1
        assert spool.confirm([message_digest("p/n/events/c", b"old-0")]) == 1
        assert len(spool) == 0
        spool.append("p/n/events/c", b"new", qos=1)
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(messages)")}
    assert {"digest", "sent_at"} <= columns


def test_stored_digest_is_the_shared_function(tmp_path: Path) -> None:
    """The spool indexes exactly what the station computes from the topic and payload it receives."""
    path = tmp_path / "s.sqlite"
    with Spool(path, max_messages=10) as spool:
        spool.append("p/n/clips/c/a1", b"\x00\x01mp4", qos=1)
    (stored,) = sqlite3.connect(path).execute("SELECT digest FROM messages").fetchone()
    assert stored == digest_key(message_digest(b"p/n/clips/c/a1", b"\x00\x01mp4"))
