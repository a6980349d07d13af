"""Security headers on every HTTP response of the station, pages, assets and API alike.

Pages set their own Content-Security-Policy (web/server.py: scripts, styles, tiles); every other response
(JSON, SDP, JPEG, metrics) gets the strictest one, since none of them is meant to be rendered as a document:
a JSON body opened in a tab, or a snapshot, then cannot run or load anything. A header a route set itself
is never replaced. Strict-Transport-Security is sent only on responses that went over HTTPS (RFC 6797: a
browser ignores it over http, and a plain-http LAN install must not be told to insist on TLS).

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it leaves streaming bodies and
WebSockets untouched.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS_MAX_AGE_S = 365 * 86400
EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": API_CONTENT_SECURITY_POLICY,
}
HSTS = {"Strict-Transport-Security": f"max-age={HSTS_MAX_AGE_S}"}


class SecurityHeaders:
    """ASGI middleware adding EVERY_RESPONSE (where not set) and, over HTTPS, HSTS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = {**EVERY_RESPONSE, **(HSTS if scope.get("scheme") == "https" else {})}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
