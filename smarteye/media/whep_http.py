"""WHEP over HTTP (draft-ietf-wish-whep): POST an SDP offer, get the answer and a session resource;
DELETE the resource to leave. Shared by the edge node's endpoint and the ground station's relay."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.params import Depends

from smarteye.media.fanout import PacketFanout
from smarteye.media.webrtc import WhepError, WhepServer

SDP_TYPE = "application/sdp"
MAX_OFFER_BYTES = 64 * 1024


def add_whep_routes(
    app: FastAPI,
    path: str,
    server: WhepServer,
    resolve: Callable[[dict[str, Any]], tuple[PacketFanout, str] | None],
    dependencies: Sequence[Depends] = (),
    tags: Sequence[str] = ("video",),
) -> None:
    """`path` may hold parameters (e.g. /whep/{stream}); `resolve` maps them to the stream's fan-out and node."""

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
            session_id, answer = await server.create(body.decode("utf-8", "replace"), fanout, node)
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

    common = {"dependencies": list(dependencies), "tags": list(tags)}
    app.add_api_route(path, offer, methods=["POST"], status_code=201, summary="WHEP: SDP offer → answer", **common)
    app.add_api_route(f"{path}/{{session_id}}", leave, methods=["DELETE"], summary="WHEP: end a session", **common)
    app.add_api_route(f"{path}/{{session_id}}", trickle, methods=["PATCH"], include_in_schema=False, **common)
