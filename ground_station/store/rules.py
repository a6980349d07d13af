"""Versions of each stream's rules: every save is a new version (n+1, with its author and time, and an
audit entry saying what changed, in one transaction); the newest one is what the stream should run, and
`published_time` says whether the broker has it (retained) yet."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground_station.store import audit
from ground_station.store.records import RulesVersion
from ground_station.store.schema import rules_versions
from smarteye.wire.rules import RuleSet

Describe = Callable[[RuleSet | None, RuleSet | None], list[str]]  # (old, new) -> what changed, for the audit log


class VersionConflictError(RuntimeError):
    """The stream's rules changed since the version the edit was based on (or a save raced this one)."""


def _version(row: sa.Row[Any]) -> RulesVersion:
    rules = RuleSet.model_validate_json(row.rules) if row.rules is not None else None
    return RulesVersion(node=row.node, stream=row.stream, version=row.version, rules=rules, author=row.author,
                        time=row.time, published_time=row.published_time)  # fmt: skip


def current(conn: Connection, node: str, stream: str) -> RulesVersion | None:
    c = rules_versions.c
    row = conn.execute(
        sa.select(rules_versions).where(c.node == node, c.stream == stream).order_by(c.version.desc()).limit(1)
    ).first()
    return _version(row) if row is not None else None


def history(conn: Connection, node: str, stream: str, limit: int = 100) -> list[RulesVersion]:
    """Saved versions, newest first."""
    c = rules_versions.c
    stmt = sa.select(rules_versions).where(c.node == node, c.stream == stream).order_by(c.version.desc()).limit(limit)
    return [_version(row) for row in conn.execute(stmt)]


def latest_per_stream(conn: Connection, *, unpublished_only: bool = False) -> list[RulesVersion]:
    """The newest version of every stream that has one (optionally: only those the broker lacks)."""
    c = rules_versions.c
    newest = sa.select(c.node, c.stream, sa.func.max(c.version).label("version")).group_by(c.node, c.stream).subquery()
    stmt = (
        sa.select(rules_versions)
        .join(newest, sa.and_(c.node == newest.c.node, c.stream == newest.c.stream, c.version == newest.c.version))
        .order_by(c.node, c.stream)
    )
    if unpublished_only:
        stmt = stmt.where(c.published_time.is_(None))
    return [_version(row) for row in conn.execute(stmt)]


def save(
    conn: Connection,
    node: str,
    stream: str,
    rules: RuleSet | None,
    author: str,
    describe: Describe,
    base_version: int | None = None,
    at: float | None = None,
) -> RulesVersion:
    """Store `rules` (None: clear) as version n+1 with an audit entry; raises VersionConflictError if
    `base_version` is given and is not the current version."""
    now = time.time() if at is None else at
    before = current(conn, node, stream)
    old_version = before.version if before is not None else 0
    if base_version is not None and base_version != old_version:
        raise VersionConflictError(
            f"{node}/{stream}: the rules are at version {old_version}, not {base_version} (reload and edit again)"
        )
    version = old_version + 1
    stored = rules.model_copy(update={"version": version}) if rules is not None else None
    try:
        with conn.begin_nested():
            conn.execute(
                sa.insert(rules_versions),
                {"node": node, "stream": stream, "version": version, "author": author, "time": now,
                 "rules": stored.model_dump_json() if stored is not None else None},
            )  # fmt: skip
    except sa.exc.IntegrityError:
        raise VersionConflictError(f"{node}/{stream}: another version {version} was saved at the same time") from None
    old_rules = before.rules if before is not None else None
    detail = {"from_version": old_version, "to_version": version, "changes": describe(old_rules, stored)}
    action = audit.RULES_SAVE if stored is not None else audit.RULES_CLEAR
    audit.record(conn, author, action, f"{node}/{stream}", detail, now)
    return RulesVersion(node, stream, version, stored, author, now, None)


def mark_published(conn: Connection, node: str, stream: str, version: int, at: float | None = None) -> None:
    c = rules_versions.c
    conn.execute(
        sa.update(rules_versions)
        .where(c.node == node, c.stream == stream, c.version == version, c.published_time.is_(None))
        .values(published_time=time.time() if at is None else at)
    )
