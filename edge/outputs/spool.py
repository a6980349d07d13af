"""A bounded, crash-safe FIFO of outgoing MQTT messages in SQLite.

Events are written here before any network I/O so that a broker outage, a network drop or a process
restart never loses them; they are deleted only once the broker has acknowledged them.  The queue is
bounded: when full, the oldest message is dropped (and counted) rather than blocking the video
pipeline or filling the disk.

A full disk is an outage, not a fault of the spool: what cannot be written is held in memory (bounded
by the same limit) and written, in order, as soon as there is room again (`flush_held`); acks that
cannot be written are retried the same way.  The real error ("database or disk is full") is logged
once when it starts and once when it ends, and counted (`disk_full`).  Only a file SQLite says is
corrupt or not a database is set aside at start; any other failure to open it is raised as it is.

End-to-end confirmations (smarteye.wire.confirm): each row carries the `digest` of its topic and payload
and `sent_at`, when the broker accepted it (NULL: not yet).  With confirmations the publisher marks a row
sent on the broker's PUBACK (`mark_sent`) and deletes it only when the ground station names its digest
(`confirm`): a broker that crashes with the message in memory loses nothing, because sent rows are sent
again after a reconnect or a timeout (`requeue_sent`).  `peek` returns unsent rows only; the bound counts
both kinds.  A spool file of the older schema gains the two columns in place when opened.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from smarteye.wire.confirm import digest_key, message_digest

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, single-user spool assumed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("edge.outputs.spool")

# SQLite result codes (sqlite3.Error.sqlite_errorcode, primary code in the low byte)
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 11, 13, 26
_SQLITE_IOERR = 10  # e.g. SQLITE_IOERR_WRITE on ENOSPC in the WAL


def _code(error: sqlite3.Error) -> int:
    return (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF


def is_disk_full(error: BaseException) -> bool:
    """SQLite could not write for lack of space (the disk, or the file's own size limit)."""
    if not isinstance(error, sqlite3.Error):
        return False
    return _code(error) == _SQLITE_FULL or (_code(error) == _SQLITE_IOERR and "full" in str(error).lower())


def is_corrupt(error: BaseException) -> bool:
    """The file is damaged or not a database: the only reason to set a spool aside."""
    return isinstance(error, sqlite3.DatabaseError) and _code(error) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL,
    digest INTEGER,
    sent_at REAL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a spool file of the older schema (no `digest`, no `sent_at`) up to date in place: add the
    columns, compute the digest of every waiting row (all unsent), then index it."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "digest" not in columns or "sent_at" not in columns:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if "digest" not in columns:
                conn.execute("ALTER TABLE messages ADD COLUMN digest INTEGER")
            if "sent_at" not in columns:
                conn.execute("ALTER TABLE messages ADD COLUMN sent_at REAL")
            rows = conn.execute("SELECT seq, topic, payload FROM messages WHERE digest IS NULL").fetchall()
            conn.executemany(
                "UPDATE messages SET digest = ? WHERE seq = ?",
                [(digest_key(message_digest(topic, bytes(payload))), seq) for seq, topic, payload in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        log.info("spool: added end-to-end confirmation columns (%d waiting messages kept)", len(rows))
    conn.execute("CREATE INDEX IF NOT EXISTS messages_digest ON messages(digest)")


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
        self._held: collections.deque[tuple[str, bytes, int, bool, float]] = collections.deque()
        self._unacked: set[int] = set()  # delivered, but their delete could not be written yet
        self._confirm_later: set[int] = set()  # confirmed digest keys whose delete could not be written yet
        self._full_since: float | None = None  # monotonic time the disk became full; None: not full
        self.disk_full = 0  # writes refused for lack of space, over this run (the metric)
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
            if not is_corrupt(error):
                # Not damage (the disk is full, the directory read-only, ...): setting the file aside
                # would hide a backlog that is still good; say what is wrong and stop.
                try:
                    free = f"; {shutil.disk_usage(self.path.parent).free} bytes free on its disk"
                except OSError:
                    free = ""
                raise RuntimeError(f"cannot open spool {self.path}: {error}{free}") from error
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
            # Keep the WAL small (checkpoint every 128 pages, truncate it to 512 KiB after): the WAL only
            # grows between checkpoints, and on a nearly full disk it must not be what fills it.
            conn.execute("PRAGMA wal_autocheckpoint=128")
            conn.execute("PRAGMA journal_size_limit=524288")
            conn.executescript(_SCHEMA)
            _migrate(conn)
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

    def _rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already (it does on SQLITE_FULL): a failing
        ROLLBACK must never replace the real error ("cannot rollback - no transaction is active")."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

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
            self._rollback()
            raise
        # Only update the in-memory mirrors once the transaction is durable.
        self._count += incoming - removed
        self._dropped += removed
        return removed, lastrowid

    def append(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> int:
        """Store a message and return the highest seq now on disk; when the spool is full the oldest is
        dropped.  On a full disk the message is held in memory (returns 0 if none could be written) and
        written with the next append or `flush_held` once there is room; other errors are raised."""
        with self._lock:
            self._check_open()
            self._held.append((topic, bytes(payload), int(qos), bool(retain), time.time()))
            if len(self._held) > self.max_messages:
                self._held.popleft()  # the same bound as on disk: the oldest goes, counted
                self._dropped += 1
            return self._write_held()

    def _write_held(self) -> int:
        """Write the held messages (oldest first, one transaction); the last seq written, 0 if none.
        Caller holds the lock."""
        if not self._held:
            return 0
        rows = list(self._held)
        sql = "INSERT INTO messages(topic, payload, qos, retain, created, digest) VALUES (?, ?, ?, ?, ?, ?)"
        try:
            _, seq = self._write(
                len(rows), *((sql, (t, p, q, int(r), c, digest_key(message_digest(t, p)))) for t, p, q, r, c in rows)
            )
        except sqlite3.Error as error:
            if not is_disk_full(error):
                self._held.pop()  # the new message is refused; earlier held ones wait for room
                raise
            self._disk_full(error)
            return 0
        self._held.clear()
        self._space_back(len(rows))
        return seq or 0

    def _disk_full(self, error: sqlite3.Error) -> None:
        self.disk_full += 1
        if self._full_since is None:
            self._full_since = time.monotonic()
            log.error("spool %s: %s; holding new messages in memory (up to %d) until there is room",
                      self.path, error, self.max_messages)  # fmt: skip

    def _space_back(self, written: int) -> None:
        if self._full_since is not None:
            lasted = time.monotonic() - self._full_since
            self._full_since = None
            log.warning("spool %s: room again after %.1f s; %d held messages written (%d writes refused)",
                        self.path, lasted, written, self.disk_full)  # fmt: skip

    @property
    def held(self) -> int:
        """Messages waiting in memory for room on disk."""
        return len(self._held) + len(self._unacked)

    def flush_held(self) -> int:
        """Try again to write what a full disk refused (messages, then acks); the last seq written."""
        with self._lock:
            if self._closed:
                return 0
            if self._full_since is not None:
                # The WAL only grows between checkpoints (1000 pages by default): on a small disk it may
                # be what fills it.  Folding it back into the database gives its room back.
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            seq = self._write_held()
            if self._unacked and not self._held:
                pending, self._unacked = self._unacked, set()
                self._delete(pending)
            if self._confirm_later and not self._held:
                keys, self._confirm_later = self._confirm_later, set()
                self._delete_confirmed(keys)
            return seq

    def peek(self, limit: int, after_seq: int = 0) -> list[SpooledMessage]:
        """Up to `limit` unsent messages with seq > after_seq, oldest first (nothing is removed); rows
        marked sent (`mark_sent`) wait for their confirmation and are not returned."""
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT seq, topic, payload, qos, retain, created FROM messages"
                " WHERE seq > ? AND sent_at IS NULL ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [SpooledMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def ack(self, seq: int) -> bool:
        """Delete a delivered message; False if it was already gone (acked twice or dropped)."""
        return self.ack_many((seq,)) == 1

    def ack_many(self, seqs: Iterable[int]) -> int:
        """Delete several delivered messages in one transaction; returns how many existed."""
        wanted = {int(s) for s in seqs}
        if not wanted:
            return 0
        with self._lock:
            self._check_open()
            return self._delete(wanted)

    def _delete(self, seqs: set[int]) -> int:
        """Delete delivered rows; on a full disk they are remembered and deleted later (caller holds the lock)."""
        deleted = self._delete_rows("seq", seqs, self._unacked)
        return len(seqs) if deleted is None else deleted  # full disk: delivered, not to be sent again by this run

    def _delete_rows(self, column: str, values: set[int], later: set[int]) -> int | None:
        """Delete the rows whose `column` (seq or digest) is one of `values`, in one transaction; how many. On a
        full disk None, and `values` join `later`, to be deleted once there is room (caller holds the lock)."""
        before = self._conn.total_changes
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(f"DELETE FROM messages WHERE {column} = ?", [(v,) for v in sorted(values)])
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            if not is_disk_full(error):
                raise
            self._disk_full(error)
            later |= values
            return None
        except BaseException:
            self._rollback()
            raise
        removed = self._conn.total_changes - before
        self._count -= removed
        return removed

    def mark_sent(self, seqs: Iterable[int]) -> int:
        """The broker accepted these rows: keep them, but out of `peek`, until confirmed or requeued; how
        many were marked.  On a full disk nothing is marked: the rows stay unsent and are sent again after
        the next reconnect (a duplicate, which the station absorbs), never lost."""
        wanted = sorted({int(s) for s in seqs})
        if not wanted:
            return 0
        with self._lock:
            self._check_open()
            return self._update(
                "UPDATE messages SET sent_at = ? WHERE seq = ? AND sent_at IS NULL",
                [(time.time(), seq) for seq in wanted],
            )

    def requeue_sent(self, older_than: float | None = None) -> int:
        """Make sent but unconfirmed rows unsent again (all, or those sent before the wall-clock time
        `older_than`), so `peek` returns them and they are sent again; how many."""
        with self._lock:
            self._check_open()
            if older_than is None:
                return self._update("UPDATE messages SET sent_at = NULL WHERE sent_at IS NOT NULL", [()])
            return self._update(
                "UPDATE messages SET sent_at = NULL WHERE sent_at IS NOT NULL AND sent_at < ?", [(older_than,)]
            )

    def _update(self, sql: str, params: Sequence[tuple[object, ...]]) -> int:
        """Run an UPDATE over `params` in one transaction; rows changed (0 on a full disk: counted, not raised)."""
        before = self._conn.total_changes
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, params)
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            if not is_disk_full(error):
                raise
            self._disk_full(error)
            return 0
        except BaseException:
            self._rollback()
            raise
        return self._conn.total_changes - before

    def confirm(self, digests: Iterable[bytes]) -> int:
        """The ground station is finished with the messages of these digests: delete their rows, sent or
        not; how many were deleted (a digest of a row already gone is ignored)."""
        keys = {digest_key(d) for d in digests}
        if not keys:
            return 0
        with self._lock:
            self._check_open()
            return self._delete_confirmed(keys)

    def _delete_confirmed(self, keys: set[int]) -> int:
        """Caller holds the lock.  On a full disk the keys are kept and deleted by `flush_held`."""
        return self._delete_rows("digest", keys, self._confirm_later) or 0

    def remembered(self, key: str) -> bool:
        """A fact this spool file keeps across restarts (`remember`), e.g. that a station confirms its rows."""
        with self._lock:
            self._check_open()
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return bool(row and row[0])

    def remember(self, key: str) -> None:
        """Keep `key` as true in this file; a failed write (a full disk) only costs remembering it next time."""
        with self._lock:
            self._check_open()
            try:
                self._conn.execute(
                    "INSERT INTO meta(key, value) VALUES(?, 1) ON CONFLICT(key) DO UPDATE SET value = 1", (key,)
                )
            except sqlite3.Error as error:
                log.warning("spool %s: could not remember %s: %s", self.path, key, error)

    @property
    def unconfirmed(self) -> int:
        """Rows the broker accepted that the station has not confirmed yet (part of `len`)."""
        with self._lock:
            self._check_open()
            return int(self._conn.execute("SELECT COUNT(*) FROM messages WHERE sent_at IS NOT NULL").fetchone()[0])

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
        """Messages not yet delivered: on disk and held in memory (less delivered ones not yet deleted)."""
        return self._count + len(self._held) - len(self._unacked)

    def close(self) -> None:
        """Checkpoint and close; idempotent.  Pending messages stay in the file for the next run."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._write_held()
                if self._unacked and not self._held:
                    self._delete(self._unacked)
                if self._confirm_later and not self._held:
                    self._delete_confirmed(self._confirm_later)
            if self._held:
                log.error("spool %s: disk still full at close: %d held messages are lost", self.path, len(self._held))
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
