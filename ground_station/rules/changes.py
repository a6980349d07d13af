"""What changed between two versions of a stream's rules, in words, for the audit log: zones, lines and
rules added, removed or changed (by name, with the fields that changed), and the clip and counts settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from smarteye.wire.rules import RuleSet


def _fields_changed(old: BaseModel, new: BaseModel) -> list[str]:
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return [name for name in after if before.get(name) != after[name]]


def _named(kind: str, old: list[Any], new: list[Any]) -> list[str]:
    before, after = {item.name: item for item in old}, {item.name: item for item in new}
    changes = [f"{kind} {name!r} added" for name in after if name not in before]
    changes += [f"{kind} {name!r} removed" for name in before if name not in after]
    for name in after.keys() & before.keys():
        if fields := _fields_changed(before[name], after[name]):
            changes.append(f"{kind} {name!r} changed: {', '.join(fields)}")
    return sorted(changes)


def describe_changes(old: RuleSet | None, new: RuleSet | None) -> list[str]:
    """Short sentences saying what `new` changes in `old` (None: no rules set at the station)."""
    if new is None:
        return ["rules cleared: the stream runs its node's own rules"] if old is not None else []
    if old is None:
        old = RuleSet()
    changes = _named("zone", old.zones, new.zones) + _named("line", old.lines, new.lines)
    changes += _named("rule", old.rules, new.rules)
    if fields := _fields_changed(old.clip, new.clip):
        changes.append(f"clip settings changed: {', '.join(fields)}")
    if old.counts_interval_s != new.counts_interval_s:
        changes.append(f"counts interval {old.counts_interval_s:g} s -> {new.counts_interval_s:g} s")
    return changes or ["no change (saved again)"]
