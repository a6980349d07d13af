"""Live video routes of the ground station: the edge nodes' uplink, the list of streams, and WHEP for viewers.

Both the uplink and every WHEP session end within seconds once their credential is revoked, its user disabled,
deleted, changed or logged out (the uplink as a WebSocket, api/guard.py; a WHEP session is a peer connection
that outlives its HTTP request, so it keeps the request's credential and re-checks it), each closure audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from ground_station.api.guard import RECHECK_S, serve_while_allowed
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission, allows
from ground_station.store.audit import ACCESS_ENDED
from ground_station.video.relay import VideoRelay
from smarteye.media.fanout import PacketFanout
from smarteye.media.webrtc import WhepServer
from smarteye.media.whep_http import add_whep_routes
from smarteye.wire.names import NAME_RE

AuditRecord = Callable[[str, str, str, dict[str, Any]], None]  # Store.record_audit: actor, action, target, detail


def add_video_routes(
    app: FastAPI,
    relay: VideoRelay,
    whep: WhepServer,
    identify: Callable[[Request | WebSocket], Principal | None],
    require: Callable[[Permission], Callable[[Request], Principal]],
    recheck_s: float = RECHECK_S,
    audit: AuditRecord | None = None,
) -> None:
    """`recheck_s`: how often the uplink re-checks its token (WHEP sessions: `whep.recheck_s`); `audit`
    records each closure for a revoked credential (the store's audit log)."""
    reader = [Depends(require(Permission.READ))]

    def ended(actor: str, via: str, target: str) -> None:
        if audit is not None:
            audit(actor, ACCESS_ENDED, target, {"via": via})

    @app.get("/api/video/streams", tags=["video"], dependencies=reader)
    def video_streams() -> list[dict[str, Any]]:
        """Every stream the edge nodes have sent, with its state, size, fps and WHEP URL."""
        return relay.streams()

    @app.get("/api/video/ice-servers", tags=["video"], dependencies=reader)
    def ice_servers() -> list[dict[str, Any]]:
        """STUN/TURN servers for the live page's peer connections (browsers behind NAT)."""
        return [server.model_dump(exclude_none=True) for server in whep.ice_servers]

    @app.websocket("/api/video/uplink")
    async def video_uplink(websocket: WebSocket, node: str = "") -> None:
        """An edge node's encoded streams (binary packets) and their state changes (JSON)."""
        principal = await run_in_threadpool(identify, websocket)
        if principal is None or not allows(principal.role, Permission.VIDEO_UPLINK):
            await websocket.close(code=4401 if principal is None else 4403)
            return
        if not NAME_RE.fullmatch(node):
            await websocket.close(code=4400, reason="?node= must be the edge node's name")
            return
        if principal.name != f"token:{node}":  # a node's token sends that node's video, no other's
            await websocket.close(code=4403, reason=f"this token is not node {node}'s (create-token {node})")
            return
        await websocket.accept()

        def still_allowed() -> bool:  # a revoked node token stops its video within seconds (api/guard.py)
            current = identify(websocket)
            return current is not None and allows(current.role, Permission.VIDEO_UPLINK)

        await serve_while_allowed(
            websocket, relay.serve_uplink(websocket, node), still_allowed, recheck_s,
            on_revoked=lambda: ended(principal.name, principal.via, f"uplink {node}"),
        )  # fmt: skip

    def resolve(params: dict[str, Any]) -> tuple[PacketFanout, str] | None:
        node, stream = params.get("node", ""), params.get("stream", "")
        fanout = relay.fanout(node, stream)
        return (fanout, node) if fanout is not None else None

    def principal(request: Request) -> str:  # sessions are limited per user or token (WhepServer.create)
        who = identify(request)
        return f"principal:{who.name}" if who is not None else "anonymous"

    def watching(request: Request) -> Callable[[], bool]:
        """The offer's credential (its request's cookie or bearer token), checked again while the session lasts."""
        first = identify(request)  # the route's dependency has just accepted it
        target = f"whep {request.path_params.get('node', '')}/{request.path_params.get('stream', '')}"

        def still_allowed() -> bool:
            current = identify(request)
            if current is not None and allows(current.role, Permission.READ):
                return True
            if first is not None:
                ended(first.name, first.via, target)
            return False

        return still_allowed

    add_whep_routes(
        app, "/api/whep/{node}/{stream}", whep, resolve, dependencies=reader, principal=principal, guard=watching
    )
