"""WHEP over HTTP (draft-ietf-wish-whep): POST an SDP offer, get the answer and a session resource;
DELETE the resource to leave. Shared by the edge node's endpoint and the ground station's relay.

CORS is answered here, for the WHEP routes only and only for the configured origins: web players are served
from other origins, but a `*` would let any page a viewer opens use the endpoint (and its session slots)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.params import Depends
from fastapi.routing import APIRoute

from smarteye.media.fanout import PacketFanout
from smarteye.media.webrtc import WhepError, WhepServer

SDP_TYPE = "application/sdp"
MAX_OFFER_BYTES = 64 * 1024
CORS_METHODS = "POST, DELETE, PATCH, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"


def client_address(request: Request) -> str:
    """The default principal of a WHEP request: the client's address (the edge has one shared token)."""
    return f"address:{request.client.host}" if request.client is not None else "address:?"


def _cors_headers(request: Request, origins: Collection[str]) -> dict[str, str]:
    origin = request.headers.get("origin", "")
    if not origin or origin.lower().rstrip("/") not in origins:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Location", "Vary": "Origin"}


def _cors_route(origins: Collection[str]) -> type[APIRoute]:
    """A route class adding the CORS headers for an allowed Origin to every answer, errors (401, 404, 503…)
    included, so a web player can read why it was refused."""

    class CorsRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()

            async def with_cors(request: Request) -> Response:
                headers = _cors_headers(request, origins)
                try:
                    response = await handler(request)
                except HTTPException as error:
                    if headers:
                        error.headers = {**(error.headers or {}), **headers}
                    raise
                response.headers.update(headers)
                return response

            return with_cors

    return CorsRoute


def add_whep_routes(
    app: FastAPI,
    path: str,
    server: WhepServer,
    resolve: Callable[[dict[str, Any]], tuple[PacketFanout, str] | None],
    dependencies: Sequence[Depends] = (),
    tags: Sequence[str] = ("video",),
    principal: Callable[[Request], str] = client_address,
    cors_origins: Collection[str] | None = None,
    guard: Callable[[Request], Callable[[], bool]] | None = None,
) -> None:
    """`path` may hold parameters (e.g. /whep/{stream}); `resolve` maps them to the stream's fan-out and node;
    `principal` names who asks (its sessions are limited, see WhepServer.create); `cors_origins` are the
    web origins (scheme://host[:port]) whose players may call these routes from a browser (default: the
    server's own list); `guard` gives, for an offer, the check of its credential that the session re-runs
    while it lasts (the station: ended once the token or user is revoked; None: never re-checked)."""
    origins = frozenset(o.lower().rstrip("/") for o in (server.cors_origins if cors_origins is None else cors_origins))

    async def offer(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != SDP_TYPE:
            raise HTTPException(415, f"the WHEP offer must be sent as {SDP_TYPE}")
        body = await request.body()
        if len(body) > MAX_OFFER_BYTES:
            raise HTTPException(413, f"SDP offer larger than {MAX_OFFER_BYTES} bytes")
        target = resolve(request.path_params)
        if target is None:
            raise HTTPException(404, "no such stream")
        fanout, node = target
        try:
            session_id, answer = await server.create(
                body.decode("utf-8", "replace"), fanout, node, principal(request),
                still_allowed=guard(request) if guard is not None else None,
            )  # fmt: skip
        except WhepError as error:
            raise HTTPException(error.status, str(error)) from None
        return Response(
            answer, status_code=201, media_type=SDP_TYPE,
            headers={"Location": f"{request.url.path.rstrip('/')}/{session_id}", "Cache-Control": "no-store"},
        )  # fmt: skip

    async def leave(request: Request, session_id: str) -> Response:
        session = server.sessions.get(session_id)
        target = resolve(request.path_params)
        if session is None or target is None or session.fanout is not target[0]:
            raise HTTPException(404, "no such WHEP session")
        await server.delete(session_id)
        return Response(status_code=200)

    async def trickle(request: Request, session_id: str) -> Response:
        # Candidates are all in the answer (aiortc gathers before answering); trickle is not offered.
        return Response("trickle ICE is not supported", status_code=405, headers={"Allow": "DELETE"})

    async def preflight(request: Request) -> Response:
        """CORS preflight: no credential is sent with it, so it is answered before authentication."""
        headers = _cors_headers(request, origins)
        if not headers:
            return Response("this origin may not use the WHEP endpoint", status_code=403)
        headers.pop("Access-Control-Expose-Headers")
        headers.update({
            "Access-Control-Allow-Methods": CORS_METHODS, "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "600",
        })  # fmt: skip
        return Response(status_code=204, headers=headers)

    common: dict[str, Any] = {"dependencies": list(dependencies), "tags": list(tags)}
    router = app.router
    cors = _cors_route(origins)
    router.add_api_route(
        path, offer, methods=["POST"], status_code=201, summary="WHEP: SDP offer → answer",
        route_class_override=cors, **common,
    )  # fmt: skip
    router.add_api_route(
        f"{path}/{{session_id}}", leave, methods=["DELETE"], summary="WHEP: end a session",
        route_class_override=cors, **common,
    )  # fmt: skip
    router.add_api_route(
        f"{path}/{{session_id}}", trickle, methods=["PATCH"], include_in_schema=False, route_class_override=cors,
        **common,
    )  # fmt: skip
    for route in (path, f"{path}/{{session_id}}"):
        router.add_api_route(route, preflight, methods=["OPTIONS"], include_in_schema=False, tags=list(tags))
