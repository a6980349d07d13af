"""The one page server of the ground station's web UI: HTML pages and static assets with security headers.

Pages live in `pages/<name>.html` and are served at `/<name>`; assets in `static/` at `/static/...`.
Each page holds only its `<main>`; `pages/layout.html` (Jinja2) gives all of them the same head, assets
and navigation bar, so a header, a script or a policy-relevant tag is written once. Pages are rendered
once when the server is built, never per request.
Only the login page is served without a session; any other page sends a browser without one to
`/login?next=/<name>` (the pages hold no data, but only members see the app; the data behind them is
checked again by every API route).

Every page carries a Content-Security-Policy (same-origin scripts, styles and connections, no inline
script or style markup; images also from the map tile host when one is configured), nosniff, a
same-origin Referrer-Policy and X-Frame-Options: DENY; every asset carries nosniff too.

`static/config.js` sets `window.SMARTEYE_CONFIG` (`tiles_url` null by default: the map makes no
external request); with `tiles_url` set, the station serves a generated one instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parent
PAGES_DIR = WEB_DIR / "pages"
STATIC_DIR = WEB_DIR / "static"


@dataclass(frozen=True, slots=True)
class Page:
    """What the layout needs to know of a page: its title, its own styles and scripts (after app.js)."""

    title: str
    scripts: tuple[str, ...]
    styles: tuple[str, ...] = ("app.css",)
    nav: bool = True


_MAP_STYLES = ("vendor/leaflet/leaflet.css", "app.css")
_MAP_SCRIPTS = ("vendor/leaflet/leaflet.js", "geogrid.js")
PAGE_TABLE: dict[str, Page] = {
    "login": Page("Log in", ("login.js",), nav=False),
    "timeline": Page("Timeline", ("timeline.js",)),
    "alerts": Page("Alerts", ("alerts.js",), styles=("app.css", "alerting.css")),
    "live": Page("Live", ("live.js",)),
    "health": Page("Health", ("health.js",)),
    "map": Page("Map", (*_MAP_SCRIPTS, "map.js", "command.js"), styles=_MAP_STYLES),
    "rules": Page(
        "Zones & rules", (*_MAP_SCRIPTS, "shape_editor.js", "rules.js"), styles=(*_MAP_STYLES, "alerting.css")
    ),
    "users": Page("Users", ("users.js",)),
}
PAGES = tuple(PAGE_TABLE)
PUBLIC_PAGES = frozenset({"login"})
HOME = "/timeline"

# Pages and assets are same-origin only (connect-src 'self' also covers the live WebSocket and the WHEP
# offers; WebRTC media is not fetched); images may be blob/data (snapshots) and, if configured, map tiles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:{tiles}; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def page_path(name: str) -> Path:
    if name not in PAGES:
        raise KeyError(name)
    return PAGES_DIR / f"{name}.html"


def render_page(name: str) -> str:
    """The HTML of one page: its `<main>` inside the shared layout (autoescaped)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PAGES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return environment.get_template(page_path(name).name).render(page=PAGE_TABLE[name])


def config_js(tiles_url: str | None = None, **extra: Any) -> str:
    """The body of /static/config.js for these settings (JSON, with `<` escaped: it is a script)."""
    config = {"tiles_url": tiles_url, **{k: v for k, v in extra.items() if v is not None}}
    return "window.SMARTEYE_CONFIG = " + json.dumps(config).replace("<", "\\u003c") + ";\n"


def tiles_origin(tiles_url: str) -> str:
    """The CSP source of a tile URL template: scheme://host[:port], `{s}` subdomains as a wildcard."""
    scheme, _, rest = tiles_url.partition("://")
    host = rest.split("/", 1)[0].replace("{s}", "*")
    return f"{scheme}://{host}"


def content_security_policy(tiles_url: str | None = None) -> str:
    return CONTENT_SECURITY_POLICY.format(tiles=f" {tiles_origin(tiles_url)}" if tiles_url else "")


def page_headers(tiles_url: str | None = None) -> dict[str, str]:
    """The headers of every page."""
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(tiles_url),
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        **NOSNIFF,
    }


class _Assets(StaticFiles):
    """Static files with nosniff: a browser runs or styles an asset only under its declared type."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(NOSNIFF)
        return response


def install(
    app: FastAPI,
    signed_in: Callable[[Request], bool],
    *,
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
) -> None:
    """Serve the UI from `app`: `/` → /timeline, `/<page>`, `/static/...`.

    `signed_in(request)` tells whether the request carries a valid session or token. Call this after
    the API routes are added (the static mount must not shadow anything).
    """
    headers = page_headers(tiles_url)

    def page_route(name: str) -> Callable[[Request], Response]:
        html = render_page(name)

        def serve(request: Request) -> Response:
            if name not in PUBLIC_PAGES and not signed_in(request):
                return RedirectResponse(f"/login?next=/{name}", status_code=303)
            return HTMLResponse(html, headers=headers)

        serve.__name__ = f"page_{name}"
        return serve

    def home() -> RedirectResponse:
        return RedirectResponse(HOME, status_code=303)

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    for name in PAGES:
        app.add_api_route(f"/{name}", page_route(name), methods=["GET"], include_in_schema=False)
    if tiles_url:
        body = config_js(tiles_url, tiles_attribution=tiles_attribution)

        def config() -> Response:
            return Response(body, media_type="text/javascript", headers={"Cache-Control": "no-cache", **NOSNIFF})

        app.add_api_route("/static/config.js", config, methods=["GET"], include_in_schema=False)
    app.mount("/static", _Assets(directory=STATIC_DIR), name="static")
