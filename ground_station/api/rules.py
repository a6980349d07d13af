"""/api/rules: each stream's rules as the station keeps them (versioned) and as its edge node reports
running them; supervisors save a new version (validated with the wire model, refused with the field
named and nothing stored), which is pushed to the node retained over MQTT, or clear them (the node's own
YAML rules run again)."""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies (local here).
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query
from pydantic import BaseModel, Field

from ground_station.api.access import Require
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.rules import RulesPush, SavedRules
from ground_station.store import RulesVersion, Store
from ground_station.store.rules import VersionConflictError
from smarteye.wire.messages import StreamStatus
from smarteye.wire.names import NAME_RE
from smarteye.wire.rules import RuleSet

PREFIX = "/api/rules"
# base_version is not the current one: someone else saved in between (the body names both versions).
STALE_VERSION: dict[int | str, dict[str, Any]] = {
    409: {"description": "The rules changed since base_version: reload and edit again."}
}
TAGS: list[str | Enum] = ["rules"]
Name = Annotated[str, Path(pattern=f"^{NAME_RE.pattern}$")]
BaseVersion = Annotated[
    int | None,
    Query(ge=0, description="The version this edit is based on: 409 if the stream's rules changed since."),
]


class EdgeRulesOut(BaseModel):
    """What the node reports in its stream status."""

    rules_version: int | None = Field(description="Version the stream runs (0: the node's YAML; None: no rules).")
    rules_error: str | None = Field(description="Why the last rules pushed were refused (the field is named).")
    status_time: float = Field(description="When the node sent that status (its clock, epoch s).")


class StreamRulesOut(BaseModel):
    node: str
    stream: str
    version: int | None = Field(description="The station's newest version; None: never edited here.")
    rules: RuleSet | None = Field(description="That version's rules; None: none set here, or cleared.")
    author: str | None
    saved_time: float | None
    published: bool = Field(description="The broker has this version (retained), so the node gets it.")
    edge: EdgeRulesOut | None = Field(description="The node's report; None: no status from the stream yet.")
    in_sync: bool = Field(description="The node runs the station's newest version (or its YAML, when cleared).")


class RulesSavedOut(BaseModel):
    node: str
    stream: str
    version: int
    published: bool = Field(description="The broker acknowledged it; False: stored, pushed on the next sync.")


class RulesVersionOut(BaseModel):
    version: int
    rules: RuleSet | None = Field(description="None: this version cleared the station's rules.")
    author: str
    time: float
    published_time: float | None


def _stream_rules(node: str, stream: str, current: RulesVersion | None, status: StreamStatus | None) -> StreamRulesOut:
    edge = None
    if status is not None:
        edge = EdgeRulesOut(rules_version=status.rules_version, rules_error=status.rules_error, status_time=status.time)
    if current is None:
        in_sync = True  # nothing set here: the node runs what it has
    elif current.rules is None:
        in_sync = edge is not None and edge.rules_version in (0, None)
    else:
        in_sync = edge is not None and edge.rules_version == current.version
    return StreamRulesOut(
        node=node, stream=stream, version=current.version if current else None,
        rules=current.rules if current else None, author=current.author if current else None,
        saved_time=current.time if current else None,
        published=current is not None and current.published_time is not None, edge=edge, in_sync=in_sync,
    )  # fmt: skip


def add_rules_routes(app: FastAPI, store: Store, require: Require, push: RulesPush) -> None:
    Reader = Annotated[Principal, Depends(require(Permission.READ))]
    Supervisor = Annotated[Principal, Depends(require(Permission.SUPERVISE))]

    def saved(node: str, stream: str, save: Callable[[], SavedRules]) -> RulesSavedOut:
        try:
            result = save()
        except VersionConflictError as error:
            raise HTTPException(409, str(error)) from None
        return RulesSavedOut(node=node, stream=stream, version=result.version.version, published=result.published)

    @app.get(PREFIX, tags=TAGS, response_model=list[StreamRulesOut])
    def all_streams(principal: Reader) -> list[StreamRulesOut]:
        """Every stream the station knows (from its status or its rules), with both versions."""
        statuses = {(s.node, s.stream): s for s in store.stream_statuses()}
        versions = {(v.node, v.stream): v for v in store.latest_rules()}
        return [
            _stream_rules(node, stream, versions.get((node, stream)), statuses.get((node, stream)))
            for node, stream in sorted(statuses.keys() | versions.keys())
        ]

    @app.get(PREFIX + "/{node}/{stream}", tags=TAGS, response_model=StreamRulesOut)
    def stream_rules(node: Name, stream: Name, principal: Reader) -> StreamRulesOut:
        """The stream's newest rules at the station, and the version its node reports running."""
        return _stream_rules(node, stream, store.current_rules(node, stream), store.stream_status(node, stream))

    @app.put(PREFIX + "/{node}/{stream}", tags=TAGS, response_model=RulesSavedOut, responses=STALE_VERSION)
    def save_rules(
        node: Name,
        stream: Name,
        principal: Supervisor,
        rules: Annotated[RuleSet, Body(description="The stream's rules; `version` is set by the station (n+1).")],
        base_version: BaseVersion = None,
    ) -> RulesSavedOut:
        """Save a new version (n+1, with you as author, in the audit log) and push it to the node, retained.
        Invalid rules are refused with 422 naming the field; nothing is stored then."""
        return saved(node, stream, lambda: push.save(node, stream, rules, principal.name, base_version))

    @app.delete(PREFIX + "/{node}/{stream}", tags=TAGS, response_model=RulesSavedOut, responses=STALE_VERSION)
    def clear_rules(node: Name, stream: Name, principal: Supervisor, base_version: BaseVersion = None) -> RulesSavedOut:
        """Clear the station's rules (a new version without rules): the node runs its own YAML rules again."""
        return saved(node, stream, lambda: push.save(node, stream, None, principal.name, base_version))

    @app.get(PREFIX + "/{node}/{stream}/versions", tags=TAGS, response_model=list[RulesVersionOut])
    def versions(
        node: Name, stream: Name, principal: Supervisor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[RulesVersionOut]:
        """Saved versions, newest first, with their authors."""
        return [
            RulesVersionOut(version=v.version, rules=v.rules, author=v.author, time=v.time,
                            published_time=v.published_time)
            for v in store.rules_history(node, stream, limit)
        ]  # fmt: skip
