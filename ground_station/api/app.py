"""The ground station's web application: REST API (OpenAPI), WebSocket live push, and the pages.

Authentication: a browser logs in and gets an HttpOnly, SameSite=Strict session cookie; every
state-changing request made with that cookie must carry the session's CSRF token in
`X-CSRF-Token`. Other systems use `Authorization: Bearer <API token>` (no CSRF: no ambient
credential). Every route but /api/health and /metrics requires authentication; what each role may
do is the GRANTS table in auth/roles.py.

Logins are throttled per account and per client address (auth/throttle.py: 429 with Retry-After), at
most two password hashes run at once (503 with Retry-After beyond that: argon2 costs 64 MiB each), and
every login and failed login is in the audit log. The session cookie is `Secure` when the request came
over HTTPS (or as `secure_cookies` forces). WebSockets are same-origin only and closed within seconds of
their credential being revoked (api/guard.py). Errors have one shape, the one the OpenAPI document gives:
`{"detail": "..."}`, and for 422 FastAPI's list of `{loc, msg, type}`.
"""

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ground_station.api.alerting import add_alerting_routes
from ground_station.api.command import add_command_routes
from ground_station.api.geojson import add_geojson_routes
from ground_station.api.guard import CLOSE_FORBIDDEN, RECHECK_S, same_origin, serve_while_allowed
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.api.video import add_video_routes
from ground_station.auth.accounts import (
    MIN_PASSWORD_LENGTH,
    TOKEN_NAME_PATTERN,
    USERNAME_PATTERN,
    AccountError,
    AccountExists,
    AccountNotFound,
    Accounts,
    HashingBusy,
    LastAdminError,
    Principal,
)  # fmt: skip
from ground_station.auth.roles import Permission, Role, allows
from ground_station.auth.throttle import ACCOUNT, LoginThrottle, retry_after_header
from ground_station.command.commander import Commander
from ground_station.command.config import CommandConfig
from ground_station.feeds.geojson import geojson_text
from ground_station.metrics import CONTENT_TYPE, StationCollector, StationMetrics
from ground_station.rules import RulesPush
from ground_station.snapshots import Snapshots
from ground_station.store.audit import ACCESS_ENDED, LOGIN, LOGIN_FAILURE
from ground_station.store.queries import BadCursorError
from ground_station.store.store import Store
from ground_station.video.relay import VideoRelay
from ground_station.web import server as web
from ground_station.web.headers import SecurityHeaders
from ground_station.webhooks import WebhookDispatcher
from smarteye.media.webrtc import WhepServer
from smarteye.strict import StrictModel

SESSION_COOKIE = "smarteye_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class SessionInfo(BaseModel):
    username: str
    role: Role
    csrf_token: str | None = None


class NewUser(StrictModel):
    username: str = Field(max_length=64, pattern=f"^{USERNAME_PATTERN}$")
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    role: Role


class UserChange(BaseModel):
    """At least one field, none null: an empty change is refused (422), as the schema says."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    role: Role | SkipJsonSchema[None] = None
    password: str | SkipJsonSchema[None] = Field(None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    disabled: bool | SkipJsonSchema[None] = None


class NewToken(StrictModel):
    # Printable, not only spaces: the same rule as Accounts.create_token (control characters refused by both).
    name: str = Field(min_length=1, max_length=128, pattern=TOKEN_NAME_PATTERN)
    role: Role


class ErrorOut(BaseModel):
    """Every error but 422 (request validation): what went wrong, for a person."""

    detail: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Documented on every route (the public ones included: a wrong method or path can reach any of them).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Not authenticated: no session cookie or bearer token, or one that is expired or revoked."),
    403: _error("Authenticated, but the role may not do this, or the session's X-CSRF-Token is missing."),
    404: _error("No such resource."),
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": "Browser session from POST /api/login; unsafe methods also need X-CSRF-Token."},
    "bearer": {"type": "http", "scheme": "bearer", "description": "API token (smarteye ground-station create-token)."},
}  # fmt: skip


async def _until_disconnected(websocket: WebSocket) -> None:
    """Returns once the client has closed the connection (what it sends otherwise is ignored)."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _unprocessable_as_documented(request: Request, error: Exception) -> Response:
    """A 422 raised by a route (bad cursor, weak password…) in the shape the OpenAPI document gives every 422
    (FastAPI's HTTPValidationError), not `{"detail": "text"}`; other errors as FastAPI answers them."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 422 and isinstance(error.detail, str):
        body = {"detail": [{"loc": [], "msg": error.detail, "type": "value_error"}]}
        return JSONResponse(body, status_code=422, headers=error.headers)
    return await http_exception_handler(request, error)


def create_app(
    store: Store,
    accounts: Accounts,
    snapshots: Snapshots,
    hub: LiveHub,
    telemetry: TelemetryCache,
    metrics: StationMetrics | None = None,
    secure_cookies: bool | None = None,
    relay: VideoRelay | None = None,
    whep: WhepServer | None = None,
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
    rules_push: RulesPush | None = None,
    webhooks: WebhookDispatcher | None = None,
    commander: Commander | None = None,
    throttle: LoginThrottle | None = None,
    recheck_s: float = RECHECK_S,
) -> FastAPI:
    """`secure_cookies`: None sets the cookie's Secure flag when the request came over HTTPS (a LAN install on
    plain http works, a TLS one is protected); True or False force it. `recheck_s`: how often an open
    WebSocket re-checks its credential (see api/guard.py)."""
    throttle = LoginThrottle() if throttle is None else throttle
    relay = VideoRelay() if relay is None else relay
    whep = WhepServer() if whep is None else whep
    metrics = StationMetrics(StationCollector(hub, relay, whep)) if metrics is None else metrics
    app = FastAPI(
        title="SmartEye ground station",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind authentication
        description="Events, snapshots, stream health and live push from SmartEye edge nodes.",
        responses=COMMON_RESPONSES,
    )
    app.add_exception_handler(StarletteHTTPException, _unprocessable_as_documented)
    app.add_middleware(SecurityHeaders)

    def identify(request: Request | WebSocket) -> Principal | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return accounts.token(header[7:].strip())
        session_id = request.cookies.get(SESSION_COOKIE)
        return accounts.session(session_id) if session_id else None

    def require(permission: Permission) -> Callable[[Request], Principal]:
        def check(request: Request) -> Principal:
            principal = identify(request)
            if principal is None:
                raise HTTPException(401, "authentication required")
            if not allows(principal.role, permission):
                raise HTTPException(403, f"role {principal.role.value} may not use this ({permission.value})")
            if (
                principal.via == "session"
                and request.method not in SAFE_METHODS
                and request.headers.get("x-csrf-token") != principal.csrf_token
            ):
                raise HTTPException(403, "missing or wrong X-CSRF-Token")
            return principal

        return check

    Reader = Annotated[Principal, Depends(require(Permission.READ))]
    Pilot = Annotated[Principal, Depends(require(Permission.TELEMETRY))]
    Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]

    # -- public ----------------------------------------------------------------------------
    @app.get("/api/health", tags=["public"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "time": time.time()}

    @app.get("/metrics", response_class=Response, tags=["public"])
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    # -- session ---------------------------------------------------------------------------
    @app.post(
        "/api/login", response_model=SessionInfo, tags=["session"], openapi_extra={"security": []},
        responses={
            429: {**_error("Too many failed logins for this account or client address."), "headers": RETRY_AFTER},
            503: {**_error("Too many logins being checked at once."), "headers": RETRY_AFTER},
        },
    )  # fmt: skip
    def login(body: Login, request: Request, response: Response) -> SessionInfo:
        address = request.client.host if request.client else "unknown"
        wait_s, which = throttle.retry_after(body.username, address)
        if which is not None:
            retry = retry_after_header(wait_s)
            raise HTTPException(429, f"too many failed logins for this {which}; try again in {retry} s",
                                headers={"Retry-After": retry})  # fmt: skip
        try:
            result = accounts.login(body.username, body.password)
        except HashingBusy as error:
            raise HTTPException(503, str(error), headers={"Retry-After": "1"}) from None
        if result is None:
            throttle.failed(body.username, address)
            detail = {"reason": "wrong username or password", "failures": throttle.failures(ACCOUNT, body.username)}
            store.record_audit(body.username, LOGIN_FAILURE, address, detail)
            raise HTTPException(401, "wrong username or password")
        throttle.succeeded(body.username, address)
        session_id, principal = result
        store.record_audit(principal.name, LOGIN, address, {})
        secure = request.url.scheme == "https" if secure_cookies is None else secure_cookies
        response.set_cookie(
            SESSION_COOKIE, session_id, max_age=int(accounts.session_ttl_s), httponly=True, samesite="strict",
            secure=secure, path="/",
        )  # fmt: skip
        return SessionInfo(username=principal.name, role=principal.role, csrf_token=principal.csrf_token)

    @app.post("/api/logout", tags=["session"])
    def logout(request: Request, response: Response, principal: Reader) -> dict[str, str]:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            accounts.logout(session_id)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return {"status": "logged out"}

    @app.get("/api/session", response_model=SessionInfo, tags=["session"])
    def session(principal: Reader) -> SessionInfo:
        return SessionInfo(username=principal.name, role=principal.role, csrf_token=principal.csrf_token)

    @app.get("/api/openapi.json", tags=["session"])
    def openapi(principal: Reader) -> JSONResponse:
        return JSONResponse(openapi_document())

    # -- data ------------------------------------------------------------------------------
    @app.get("/api/nodes", tags=["data"])
    def nodes(principal: Reader) -> list[dict[str, Any]]:
        by_node: dict[str, dict[str, Any]] = {
            n.node: {"node": n.node, "state": n.state, "time": n.time, "last_seen": n.last_seen, "streams": []}
            for n in store.nodes()
        }
        for health_row in store.health():
            entry = by_node.setdefault(
                health_row.node,
                {
                    "node": health_row.node,
                    "state": health_row.node_state,
                    "time": None,
                    "last_seen": None,
                    "streams": [],
                },
            )
            row = {
                k: getattr(health_row, k) for k in health_row.__dataclass_fields__ if k not in ("node", "node_state")
            }
            entry["streams"].append(row)
        return sorted(by_node.values(), key=lambda n: n["node"])

    @app.get("/api/events", tags=["data"])
    def events(
        principal: Reader,
        start: float | None = None,
        end: float | None = None,
        node: str | None = None,
        stream: str | None = None,
        label: str | None = None,
        type: str | None = Query(None, pattern="^(new|update|end)$"),
        min_score: float | None = Query(None, ge=0, le=1),
        limit: int = Query(50, ge=1, le=500),
        cursor: str | None = None,
    ) -> dict[str, Any]:
        try:
            page = store.query_events(since=start, until=end, node=node, stream=stream, label=label, type=type,
                                      min_score=min_score, limit=limit, cursor=cursor)  # fmt: skip
        except BadCursorError as error:
            raise HTTPException(422, f"cursor: {error}") from None
        with_snapshot = snapshots.which_exist(e.event_id for e in page.events)
        items = []
        for stored in page.events:
            item = stored.message().model_dump(mode="json")
            item["received_time"] = stored.received_time
            item["has_snapshot"] = stored.event_id in with_snapshot
            items.append(item)
        return {"items": items, "next_cursor": page.next_cursor}

    @app.get("/api/events/{event_id}", tags=["data"])
    def event_detail(event_id: str, principal: Reader) -> dict[str, Any]:
        messages = store.event_messages(event_id)
        if not messages:
            raise HTTPException(404, f"no event {event_id!r}")
        return {
            "event_id": event_id,
            "messages": [{**m.message().model_dump(mode="json"), "received_time": m.received_time} for m in messages],
            "has_snapshot": bool(snapshots.which_exist([event_id])),
        }

    @app.get("/api/events/{event_id}/snapshot", tags=["data"], response_class=Response)
    def event_snapshot(event_id: str, principal: Reader) -> Response:
        jpeg = snapshots.get(event_id)
        if jpeg is None:
            raise HTTPException(404, f"no snapshot for event {event_id!r}")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/api/stats", tags=["data"])
    def stats(principal: Reader, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        result = store.stats(since=start, until=end)
        return {
            "total": {"messages": result.total.messages, "objects": result.total.objects},
            "by_label": [{"key": k, "count": c.objects, "messages": c.messages} for k, c in result.by_label.items()],
            "by_stream": [
                {"key": f"{node}/{stream}", "count": c.objects, "messages": c.messages}
                for (node, stream), c in result.by_stream.items()
            ],
            "by_hour": [{"key": hour, "count": c.objects, "messages": c.messages} for hour, c in result.by_hour],
        }

    @app.get("/api/telemetry", tags=["data"])
    def latest_telemetry(principal: Pilot) -> list[dict[str, Any]]:
        return telemetry.all()

    # -- administration --------------------------------------------------------------------
    def account_call(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (LastAdminError, AccountExists) as error:
            raise HTTPException(409, str(error)) from None
        except AccountNotFound as error:
            raise HTTPException(404, str(error)) from None
        except AccountError as error:
            raise HTTPException(422, str(error)) from None
        except HashingBusy as error:
            raise HTTPException(503, str(error), headers={"Retry-After": "1"}) from None

    @app.get("/api/users", tags=["admin"])
    def list_users(principal: Admin) -> list[dict[str, Any]]:
        return accounts.list_users()

    @app.post("/api/users", status_code=201, tags=["admin"], responses={409: _error("The user exists already.")})
    def create_user(body: NewUser, principal: Admin) -> dict[str, str]:
        account_call(lambda: accounts.create_user(body.username, body.password, body.role))
        return {"username": body.username, "role": body.role.value}

    last_admin = {409: _error("The change would leave no enabled admin.")}

    @app.patch("/api/users/{username}", tags=["admin"], responses=last_admin)
    def change_user(username: str, body: UserChange, principal: Admin) -> dict[str, str]:
        account_call(lambda: accounts.update_user(username, body.role, body.password, body.disabled))
        return {"username": username}

    @app.delete("/api/users/{username}", tags=["admin"], responses=last_admin)
    def delete_user(username: str, principal: Admin) -> dict[str, str]:
        if username == principal.name:
            raise HTTPException(422, "an admin cannot delete its own account")
        account_call(lambda: accounts.delete_user(username))
        return {"deleted": username}

    @app.get("/api/tokens", tags=["admin"])
    def list_tokens(principal: Admin) -> list[dict[str, Any]]:
        return accounts.list_tokens()

    @app.post("/api/tokens", status_code=201, tags=["admin"])
    def create_token(body: NewToken, principal: Admin) -> dict[str, str]:
        token_id, token = account_call(lambda: accounts.create_token(body.name, body.role, principal.name))
        return {"id": token_id, "token": token}

    @app.delete("/api/tokens/{token_id}", tags=["admin"])
    def revoke_token(token_id: str, principal: Admin) -> dict[str, str]:
        account_call(lambda: accounts.revoke_token(token_id))
        return {"revoked": token_id}

    # -- live push -------------------------------------------------------------------------
    def still_allowed(websocket: WebSocket, permission: Permission) -> bool:
        """The socket's credential (cookie or token, as at its handshake) is still valid and allowed."""
        principal = identify(websocket)
        return principal is not None and allows(principal.role, permission)

    @app.websocket("/api/live")
    async def live(websocket: WebSocket) -> None:
        if not same_origin(websocket):
            await websocket.close(code=CLOSE_FORBIDDEN, reason="cross-origin WebSocket refused")
            return
        principal = await run_in_threadpool(identify, websocket)
        if principal is None or not allows(principal.role, Permission.READ):
            await websocket.close(code=4401 if principal is None else 4403)
            return
        hub.bind(asyncio.get_running_loop())
        await websocket.accept()
        queue = hub.subscribe()
        may_see_telemetry = allows(principal.role, Permission.TELEMETRY)
        as_geojson = websocket.query_params.get("format") == "geojson"  # GIS clients: located detections/alerts

        async def push() -> None:
            # Reading too: a client that closes or goes away ends this at once, not at the next push (until
            # then its queue filled up for nobody, and the web server's shutdown waited for it).
            gone = asyncio.ensure_future(_until_disconnected(websocket))
            try:
                while True:
                    pushed = asyncio.ensure_future(queue.get())
                    await asyncio.wait({pushed, gone}, return_when=asyncio.FIRST_COMPLETED)
                    if not pushed.done():
                        pushed.cancel()
                        break
                    kind, text = pushed.result()
                    if kind == "telemetry" and not may_see_telemetry:
                        continue
                    if as_geojson and (text := geojson_text(kind, text)) is None:
                        continue
                    await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                gone.cancel()

        try:
            revoked = await serve_while_allowed(
                websocket, push(), lambda: still_allowed(websocket, Permission.READ), recheck_s,
                on_revoked=lambda: store.record_audit(principal.name, ACCESS_ENDED, "live", {"via": principal.via}),
            )  # fmt: skip
        finally:
            hub.unsubscribe(queue)
        if not revoked:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may have closed first
                await websocket.close()

    # -- live video ------------------------------------------------------------------------
    add_video_routes(app, relay, whep, identify, require, recheck_s=recheck_s, audit=store.record_audit)

    # -- rules and alerts ------------------------------------------------------------------
    add_alerting_routes(app, store, require, rules_push, webhooks)

    # -- vehicles (cross-command) ------------------------------------------------------------
    add_command_routes(app, commander or Commander(CommandConfig()), require, store)
    add_geojson_routes(app, store, require)

    # -- pages -----------------------------------------------------------------------------
    web.install(app, lambda request: identify(request) is not None, tiles_url=tiles_url,
                tiles_attribution=tiles_attribution)  # fmt: skip

    def openapi_document() -> dict[str, Any]:
        """FastAPI's document, completed: the security schemes (and no security on the public routes), and
        what FastAPI cannot see of the WHEP routes, which read their raw request (see _document_whep)."""
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)  # generated once and cached in app.openapi_schema
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            document["security"] = [{"session": []}, {"bearer": []}]
            for path in ("/api/health", "/metrics"):
                for operation in document["paths"].get(path, {}).values():
                    operation["security"] = []
            for path, item in document["paths"].items():
                if path.startswith("/api/whep/"):
                    _document_whep(path, item)
        return app.openapi_schema

    app.openapi = openapi_document  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    return app


SDP_CONTENT = {"application/sdp": {"schema": {"type": "string"}}}


def _document_whep(path: str, item: dict[str, Any]) -> None:
    """The WHEP routes (smarteye/media/whep_http.py) take the Request itself: their path parameters, the SDP
    offer body, the answer and its Location header are written here (draft-ietf-wish-whep)."""
    names = re.findall(r"\{([^}]+)\}", path)
    for operation in item.values():
        present = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
        operation.setdefault("parameters", []).extend(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
            if name not in present
        )
    offer = item.get("post")
    if offer is not None:
        offer["requestBody"] = {"required": True, "content": SDP_CONTENT, "description": "The viewer's SDP offer."}
        offer["responses"] = {
            **offer.get("responses", {}),
            "201": {
                "description": "The SDP answer; Location is the session resource to DELETE when leaving.",
                "content": SDP_CONTENT,
                "headers": {
                    "Location": {
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The WHEP session's URL (path).",
                    }
                },
            },
            "413": {"description": "SDP offer too large.", "content": {"application/json": _ERROR_JSON}},
            "415": {"description": "Not application/sdp.", "content": {"application/json": _ERROR_JSON}},
            "429": {
                "description": "This user or token has its most sessions open.",
                "content": {"application/json": _ERROR_JSON},
            },
            "503": {"description": "No viewer slot free.", "content": {"application/json": _ERROR_JSON}},
        }
    leave = item.get("delete")
    if leave is not None:
        leave["responses"] = {**leave.get("responses", {}), "200": {"description": "The session has ended."}}


_ERROR_JSON = {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
