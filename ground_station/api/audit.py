"""/api/audit: who did what, when (rules edits, acknowledgements, resolves, webhook retries)."""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies (local here).
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from ground_station.api.access import Require
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.store import Store
from ground_station.store.audit import ACTIONS
from ground_station.store.queries import BadCursorError

PREFIX = "/api/audit"
TAGS: list[str | Enum] = ["audit"]


class AuditEntryOut(BaseModel):
    id: int
    time: float
    actor: str = Field(description="User name, or token:<name> for an API token.")
    action: str = Field(description=f"One of {', '.join(ACTIONS)}.")
    target: str = Field(description="The alert id, <node>/<stream> for rules, or the delivery id.")
    detail: dict[str, Any] = Field(description="rules: from_version, to_version, changes; alerts: note.")


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


def add_audit_routes(app: FastAPI, store: Store, require: Require) -> None:
    Supervisor = Annotated[Principal, Depends(require(Permission.SUPERVISE))]

    @app.get(PREFIX, tags=TAGS, response_model=AuditPageOut)
    def audit_log(
        principal: Supervisor,
        start: float | None = None,
        end: float | None = None,
        actor: Annotated[list[str] | None, Query()] = None,
        action: Annotated[list[str] | None, Query()] = None,
        target: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: str | None = None,
    ) -> AuditPageOut:
        """Entries matching every filter, newest first."""
        try:
            page = store.query_audit(since=start, until=end, actor=actor, action=action, target=target, limit=limit,
                                     cursor=cursor)  # fmt: skip
        except BadCursorError as error:
            raise HTTPException(422, f"cursor: {error}") from None
        items = [
            AuditEntryOut(id=e.id, time=e.time, actor=e.actor, action=e.action, target=e.target, detail=e.detail)
            for e in page.entries
        ]
        return AuditPageOut(items=items, next_cursor=page.next_cursor)
