"""A bounded, crash-safe FIFO of outgoing MQTT messages in SQLite.

Events are written here before any network I/O so that a broker outage, a network drop or a process
restart never loses them; they are deleted only once the broker has acknowledged them.  The queue is
bounded: when full, the oldest message is dropped (and counted) rather than blocking the video
pipeline or filling the disk.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, single-user spool assumed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("edge.outputs.spool")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def _exclusive_lock(lock_path: Path) -> BinaryIO:
    """Refuse a second live user of the same spool: both would send (and ack) the same messages."""
    handle = open(lock_path, "a+b")  # noqa: SIM115 - held open for the spool's lifetime
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RuntimeError(
                f"spool {lock_path.with_suffix('')} is in use by another publisher (same spool name?)"
            ) from None
    return handle


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """One pending message; `seq` orders delivery and is the handle for `Spool.ack`."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created: float


class Spool:
    """Bounded on-disk FIFO, safe to share between threads.

    AUTOINCREMENT keeps `seq` strictly increasing for the life of the file, even after the queue
    has been emptied, so a sender can safely resume with `peek(after_seq=last_sent)`.
    WAL + synchronous=NORMAL makes every committed append survive a process crash.
    """

    def __init__(self, path: Path, max_messages: int) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.path = Path(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._owner = _exclusive_lock(Path(f"{self.path}.lock"))
        try:
            self._conn = self._open_or_recover()
        except BaseException:
            self._owner.close()
            raise
        self._count: int = self._conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self._dropped: int = row[0] if row else 0
        self._closed = False
        if self._count > self.max_messages:
            with self._lock:
                self._write(0)  # the limit was lowered since the file was written

    def _open_or_recover(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError as error:
            # A corrupt spool must not keep the node from starting: keep it aside and start empty.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("spool %s is unreadable (%s); moved to %s, starting empty", self.path, error, aside)
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    src.rename(f"{aside}{suffix}")
            return self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute("SELECT COUNT(*) FROM messages").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"spool {self.path} is closed")

    def _trim(self, incoming: int) -> int:
        """Drop the oldest rows so that `incoming` more fit; caller holds the lock and a transaction."""
        excess = self._count + incoming - self.max_messages
        if excess <= 0:
            return 0
        cur = self._conn.execute(
            "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq LIMIT ?)", (excess,)
        )
        removed = max(cur.rowcount, 0)
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES('dropped', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (removed,),
        )
        return removed

    def _write(self, incoming: int, *statements: tuple[str, tuple[object, ...]]) -> tuple[int, int | None]:
        """Trim for `incoming` new rows and run `statements` in one transaction; (removed, lastrowid)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            removed = self._trim(incoming)
            lastrowid: int | None = None
            for sql, params in statements:
                lastrowid = self._conn.execute(sql, params).lastrowid
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        # Only update the in-memory mirrors once the transaction is durable.
        self._count += incoming - removed
        self._dropped += removed
        return removed, lastrowid

    def append(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> int:
        """Store a message and return its sequence number; when full the oldest is dropped, never raises."""
        with self._lock:
            self._check_open()
            _, seq = self._write(
                1,
                (
                    "INSERT INTO messages(topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
                    (topic, bytes(payload), int(qos), int(bool(retain)), time.time()),
                ),
            )
        assert seq is not None
        return seq

    def peek(self, limit: int, after_seq: int = 0) -> list[SpooledMessage]:
        """Up to `limit` pending messages with seq > after_seq, oldest first (nothing is removed)."""
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT seq, topic, payload, qos, retain, created FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [SpooledMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def ack(self, seq: int) -> bool:
        """Delete a delivered message; False if it was already gone (acked twice or dropped)."""
        return self.ack_many((seq,)) == 1

    def ack_many(self, seqs: Iterable[int]) -> int:
        """Delete several delivered messages in one transaction; returns how many existed."""
        items = [(int(s),) for s in seqs]
        if not items:
            return 0
        with self._lock:
            self._check_open()
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("DELETE FROM messages WHERE seq = ?", items)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            removed = self._conn.total_changes - before
            self._count -= removed
            return removed

    @property
    def last_seq(self) -> int:
        """Highest seq ever assigned in this file (0 if none), pending or not."""
        with self._lock:
            self._check_open()
            row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        return int(row[0]) if row else 0

    @property
    def dropped(self) -> int:
        """Messages discarded because the spool was full, over the whole life of the file."""
        return self._dropped

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Checkpoint and close; idempotent.  Pending messages stay in the file for the next run."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._owner.close()  # releases the lock

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r}, pending={self._count}, max={self.max_messages}, dropped={self._dropped})"
