"""Guards of the station's WebSockets (/api/live, the video uplink): same-origin only, and closed within
seconds once their credential is gone.

Why Origin: a browser sends its cookies with a WebSocket opened by any site (SameSite does not cover
every case, e.g. a sibling subdomain), and the handshake is not subject to CORS, so a page elsewhere could
read the live feed with the user's session. A browser always sends `Origin`; it must name this station.
Clients that are not browsers (API tools, edge nodes) send none and authenticate with a bearer token.

Why a periodic re-check: a socket is authenticated once, at the handshake; revoking its token, disabling
its user or logging out (from the API or from the command line, in another process) must still end it.
Each socket re-checks its credential against the database every `every_s` seconds. WHEP viewer sessions are
not sockets of this server but peer connections: they re-check the same way (api/video.py, WhepServer.create).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

RECHECK_S = 2.0
CLOSE_REVOKED = 4401  # the application's "unauthenticated" (HTTP 401), as at the handshake
CLOSE_FORBIDDEN = 4403


def same_origin(websocket: WebSocket, allowed: frozenset[str] = frozenset()) -> bool:
    """True if the request has no Origin (not a browser) or its Origin is this host (or one of `allowed`)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    if origin.lower().rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    host = websocket.headers.get("host", "")
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc.lower() == host.lower()


async def _until_revoked(still_allowed: Callable[[], bool], every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        if not await run_in_threadpool(still_allowed):
            return


async def serve_while_allowed(
    websocket: WebSocket,
    serve: Coroutine[Any, Any, None],
    still_allowed: Callable[[], bool],
    every_s: float = RECHECK_S,
    on_revoked: Callable[[], None] | None = None,
) -> bool:
    """Run `serve` until it ends or the credential stops being allowed; then the socket is closed with 4401
    and `on_revoked` (blocking: the audit entry) runs.

    Returns True if the credential was revoked (the serving task was cancelled, its `finally` blocks ran)."""
    serving = asyncio.ensure_future(serve)
    watching = asyncio.ensure_future(_until_revoked(still_allowed, every_s))
    try:
        await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this handler cancelled (server shutdown): so is the serving task
        serving.cancel()
        raise
    finally:
        watching.cancel()
    if serving.done():
        serving.result()  # re-raise what the serving task raised
        return False
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may have closed first
        await websocket.close(code=CLOSE_REVOKED, reason="credential revoked or no longer allowed")
    if on_revoked is not None:
        await run_in_threadpool(on_revoked)
    return True
