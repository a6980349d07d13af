"""The ground station's web UI: static HTML pages and assets, no build step.

Pages live in `pages/<name>.html` and are served at `/<name>`; assets in `static/` at `/static/...`.
Every page checks the session itself (`GET /api/session`, 401 → /login), so serving a page needs
no authentication; the data behind it does. `install(app)` adds all of this to a FastAPI app.

`static/config.js` sets `window.SMARTEYE_CONFIG` (`tiles_url` null by default: the map makes no
external request). `install(app, tiles_url=...)` serves a generated one instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEB_DIR = Path(__file__).resolve().parent
PAGES_DIR = WEB_DIR / "pages"
STATIC_DIR = WEB_DIR / "static"
PAGES = ("login", "timeline", "health", "map", "users")
HOME = "/timeline"

# Pages and assets are same-origin only; images may be blob/data (snapshots) and, if configured, tiles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:{tiles}; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def page_path(name: str) -> Path:
    if name not in PAGES:
        raise KeyError(name)
    return PAGES_DIR / f"{name}.html"


def config_js(tiles_url: str | None = None, **extra: Any) -> str:
    """The body of /static/config.js for these settings."""
    config = {"tiles_url": tiles_url, **extra}
    return "window.SMARTEYE_CONFIG = " + json.dumps(config).replace("<", "\\u003c") + ";\n"


def content_security_policy(tiles_url: str | None = None) -> str:
    tiles = ""
    if tiles_url:
        scheme, _, rest = tiles_url.partition("://")
        host = rest.split("/", 1)[0].replace("{s}", "*")
        tiles = f" {scheme}://{host}"
    return CONTENT_SECURITY_POLICY.format(tiles=tiles)


def install(app: Any, *, tiles_url: str | None = None) -> None:
    """Serve the UI from a FastAPI app: `/` → /timeline, `/<page>`, `/static/...`.

    Call it after the API routes are added (the static mount must not shadow anything).
    """
    from fastapi.responses import FileResponse, RedirectResponse, Response
    from fastapi.staticfiles import StaticFiles

    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(tiles_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }

    def page_route(name: str):
        path = page_path(name)

        async def serve() -> FileResponse:
            return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers)

        serve.__name__ = f"page_{name}"
        return serve

    async def home() -> RedirectResponse:
        return RedirectResponse(HOME, status_code=307)

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    for name in PAGES:
        app.add_api_route(f"/{name}", page_route(name), methods=["GET"], include_in_schema=False)
    if tiles_url:
        body = config_js(tiles_url)

        async def config() -> Response:
            return Response(body, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

        app.add_api_route("/static/config.js", config, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
