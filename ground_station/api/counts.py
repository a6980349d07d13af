"""/api/counts: a stream's zone and line counts over time (the numbers a supervisor charts)."""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies (local here).
from enum import Enum
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, Field

from ground_station.api.access import Require
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.store import Store
from ground_station.store.alert_queries import MAX_COUNTS_POINTS
from smarteye.wire.names import NAME_RE

PREFIX = "/api/counts"
TAGS: list[str | Enum] = ["alerts"]
Name = Annotated[str, Path(pattern=f"^{NAME_RE.pattern}$")]


class CountsPointOut(BaseModel):
    time: float = Field(description="When the node counted (epoch s).")
    zones: dict[str, int] = Field(description="Matching objects in each zone at that time.")
    lines: dict[str, dict[str, int]] = Field(description="Running crossings per line and direction (in, out).")
    rules_version: int


class CountsOut(BaseModel):
    node: str
    stream: str
    points: list[CountsPointOut] = Field(description="Oldest first.")
    truncated: bool = Field(description="Older points in the range were left out (at most `limit` are returned).")


def add_counts_routes(app: FastAPI, store: Store, require: Require) -> None:
    Reader = Annotated[Principal, Depends(require(Permission.READ))]

    @app.get(PREFIX + "/{node}/{stream}", tags=TAGS, response_model=CountsOut)
    def counts(
        node: Name,
        stream: Name,
        principal: Reader,
        start: Annotated[float | None, Query(description="From (epoch s).")] = None,
        end: Annotated[float | None, Query(description="Before (epoch s).")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_COUNTS_POINTS)] = 2000,
    ) -> CountsOut:
        """The stream's counts in [start, end): the latest `limit` of them, oldest first."""
        points, truncated = store.counts_series(node, stream, since=start, until=end, limit=limit)
        return CountsOut(
            node=node,
            stream=stream,
            points=[CountsPointOut(time=p.time, zones=p.zones, lines=p.lines, rules_version=p.rules_version)
                    for p in points],
            truncated=truncated,
        )  # fmt: skip
