"""/api/alerts: the alerts the edge nodes raised, as stored (list with filters and a cursor, one alert with
its history, its snapshot and its clip), and what supervisors do about them (acknowledge, resolve: once
each, recorded with who and when in the audit log)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures' Annotated dependencies,
# which are local to the router factory.
import hashlib
from collections.abc import Callable
from enum import Enum
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ground_station.api.access import Require
from ground_station.api.ranges import bytes_response
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.store import Store, StoredAlert
from ground_station.store.queries import BadCursorError
from ground_station.store.supervision import AlreadyDoneError, NoSuchAlertError
from smarteye.wire.messages import AlertClip, AlertObject, AlertState
from smarteye.wire.rules import Direction, RuleKind, Severity

PREFIX = "/api/alerts"
TAGS: list[str | Enum] = ["alerts"]


class AlertOut(BaseModel):
    """One alert (situation): its newest state, the times of its transitions, and who dealt with it."""

    alert_id: str
    node: str
    stream: str
    rule: str
    rule_kind: RuleKind
    severity: Severity
    zone: str | None
    line: str | None
    direction: Direction | None
    state: AlertState = Field(description="Newest state; `end` is final.")
    seq: int = Field(description="Newest message number.")
    count: int
    objects: list[AlertObject] = Field(description="Objects in the situation as of the newest message.")
    line_counts: dict[str, int] | None
    start_time: float = Field(description="Capture time the situation began (epoch s).")
    update_time: float = Field(description="Capture time of the newest message.")
    end_time: float | None = Field(description="Capture time it cleared; None while it lasts.")
    rules_version: int
    clip: AlertClip | None = Field(description="The clip as the node announced it.")
    snapshot_url: str | None = Field(description="The JPEG with the zone and objects drawn, once received.")
    clip_url: str | None = Field(description="The MP4 (HTTP Range: a <video> can seek), once received.")
    acknowledged_by: str | None
    acknowledged_time: float | None
    resolved_by: str | None
    resolved_time: float | None
    first_received: float = Field(description="When the station received its first message.")
    last_received: float = Field(description="When the station received its newest message.")

    @classmethod
    def of(cls, alert: StoredAlert) -> "AlertOut":
        base = f"/api/alerts/{alert.alert_id}"
        return cls(
            alert_id=alert.alert_id, node=alert.node, stream=alert.stream, rule=alert.rule,
            rule_kind=RuleKind(alert.rule_kind), severity=Severity(alert.severity), zone=alert.zone, line=alert.line,
            direction=Direction(alert.direction) if alert.direction is not None else None,
            state=AlertState(alert.state), seq=alert.seq, count=alert.count, objects=alert.objects,
            line_counts=alert.line_counts, start_time=alert.start_time, update_time=alert.update_time,
            end_time=alert.end_time, rules_version=alert.rules_version, clip=alert.clip,
            snapshot_url=f"{base}/snapshot" if alert.has_snapshot else None,
            clip_url=f"{base}/clip" if alert.has_clip else None,
            acknowledged_by=alert.acked_by, acknowledged_time=alert.acked_time, resolved_by=alert.resolved_by,
            resolved_time=alert.resolved_time, first_received=alert.first_received, last_received=alert.last_received,
        )  # fmt: skip


class AlertPageOut(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None: no more.")


class AlertMessageOut(BaseModel):
    id: str
    seq: int
    state: AlertState
    capture_time: float
    received_time: float


class AlertDetailOut(AlertOut):
    messages: list[AlertMessageOut] = Field(description="Every message of the alert, in order.")


class Note(BaseModel):
    note: str | None = Field(None, max_length=2000, description="Why, for the audit log.")


def add_alert_routes(app: FastAPI, store: Store, require: Require) -> None:
    Reader = Annotated[Principal, Depends(require(Permission.READ))]
    Supervisor = Annotated[Principal, Depends(require(Permission.SUPERVISE))]

    def found(alert_id: str) -> StoredAlert:
        alert = store.get_alert(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return alert

    @app.get(PREFIX, tags=TAGS, response_model=AlertPageOut)
    def list_alerts(
        principal: Reader,
        start: Annotated[float | None, Query(description="Started at or after (epoch s).")] = None,
        end: Annotated[float | None, Query(description="Started before (epoch s).")] = None,
        node: Annotated[list[str] | None, Query()] = None,
        stream: Annotated[list[str] | None, Query()] = None,
        rule: Annotated[list[str] | None, Query()] = None,
        severity: Annotated[list[Severity] | None, Query()] = None,
        state: Annotated[list[AlertState] | None, Query()] = None,
        acknowledged: bool | None = None,
        resolved: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> AlertPageOut:
        """Alerts matching every filter given (repeat a parameter for several values), newest start first."""
        try:
            page = store.query_alerts(
                since=start, until=end, node=node, stream=stream, rule=rule, acknowledged=acknowledged,
                severity=[s.value for s in severity] if severity else None, resolved=resolved,
                state=[s.value for s in state] if state else None, limit=limit, cursor=cursor,
            )  # fmt: skip
        except BadCursorError as error:
            raise HTTPException(422, f"cursor: {error}") from None
        return AlertPageOut(items=[AlertOut.of(a) for a in page.alerts], next_cursor=page.next_cursor)

    @app.get(PREFIX + "/{alert_id}", tags=TAGS, response_model=AlertDetailOut)
    def alert_detail(alert_id: str, principal: Reader) -> AlertDetailOut:
        alert = found(alert_id)
        messages = [
            AlertMessageOut(id=m.id, seq=m.seq, state=AlertState(m.state), capture_time=m.capture_time,
                            received_time=m.received_time)
            for m in store.alert_history(alert_id)
        ]  # fmt: skip
        return AlertDetailOut(**AlertOut.of(alert).model_dump(), messages=messages)

    @app.get(
        PREFIX + "/{alert_id}/snapshot",
        tags=TAGS,
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def alert_snapshot(alert_id: str, principal: Reader) -> Response:
        """The JPEG of the alert's start, with the zone or line and the objects drawn."""
        jpeg = store.alert_snapshot(alert_id)
        if jpeg is None:
            raise HTTPException(404, f"no snapshot for alert {alert_id!r}")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    @app.get(
        PREFIX + "/{alert_id}/clip",
        tags=TAGS,
        response_class=Response,
        responses={
            200: {"content": {"video/mp4": {}}},
            206: {"description": "The requested byte range."},
            416: {"description": "The range is past the end."},
        },
    )
    def alert_clip(alert_id: str, request: Request, principal: Reader) -> Response:
        """The MP4 around the alert's start (HTTP Range supported, so a <video> element can seek)."""
        mp4 = store.alert_clip(alert_id)
        if mp4 is None:
            raise HTTPException(404, f"no clip for alert {alert_id!r}")
        etag = '"' + hashlib.sha256(mp4).hexdigest()[:32] + '"'
        return bytes_response(request, mp4, "video/mp4", etag, {"Cache-Control": "private, max-age=86400"})

    def act(action: Callable[[], None], alert_id: str) -> AlertOut:
        try:
            action()
        except NoSuchAlertError as error:
            raise HTTPException(404, str(error)) from None
        except AlreadyDoneError as error:
            raise HTTPException(409, str(error)) from None
        return AlertOut.of(found(alert_id))

    @app.post(PREFIX + "/{alert_id}/acknowledge", tags=TAGS, response_model=AlertOut)
    def acknowledge(alert_id: str, principal: Supervisor, body: Note | None = None) -> AlertOut:
        """Someone is on it (once per alert: 409 if it was already acknowledged, saying by whom)."""
        note = body.note if body is not None else None
        return act(lambda: store.acknowledge_alert(alert_id, principal.name, note), alert_id)

    @app.post(PREFIX + "/{alert_id}/resolve", tags=TAGS, response_model=AlertOut)
    def resolve(alert_id: str, principal: Supervisor, body: Note | None = None) -> AlertOut:
        """Dealt with (once per alert; acknowledges it too if nobody had)."""
        note = body.note if body is not None else None
        return act(lambda: store.resolve_alert(alert_id, principal.name, note), alert_id)
