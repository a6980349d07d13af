"""The pages and assets of the app the product serves (`GroundStation.app`): one page list, security
headers on every page, nosniff on every asset, no inline script needed, tiles allowed only when configured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ground_station.auth.roles import Role
from ground_station.config import GroundStationConfig
from ground_station.service import GroundStation
from ground_station.web.server import STATIC_DIR
from tests.support.accounts import FAST_HASHER

PASSWORD = "pages-password-1"
PAGES = {"/login", "/timeline", "/alerts", "/live", "/health", "/map", "/rules", "/users"}
TILES = "https://{s}.tiles.example.org/{z}/{x}/{y}.png"


@pytest.fixture
def station(tmp_path: Path):
    def build(**web: object) -> GroundStation:
        config = GroundStationConfig.model_validate(
            {
                "database_url": f"sqlite:///{tmp_path / f'gs-{len(stations)}.sqlite'}",
                "web": {"secure_cookies": False, **web},
            }
        )
        built = GroundStation(config, hasher=FAST_HASHER)  # as the product builds it; nothing started but the app
        built.accounts.create_user("ada", PASSWORD, Role.ADMIN)
        stations.append(built)
        return built

    stations: list[GroundStation] = []
    yield build
    for built in stations:
        built.store.close()


def _signed_in(station: GroundStation) -> TestClient:
    client = TestClient(station.app)
    assert client.post("/api/login", json={"username": "ada", "password": PASSWORD}).status_code == 200
    return client


def _page_routes(app) -> set[str]:
    """Every GET route that is neither API nor metrics nor the home redirect: the pages."""
    return {
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and "GET" in route.methods
        and not route.path.startswith(("/api/", "/metrics", "/static/"))
        and route.path != "/"
    }


def _directives(csp: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (d.split() for d in csp.split(";") if d.strip())}


def _assert_page_headers(response, path: str) -> dict[str, list[str]]:
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["content-type"].startswith("text/html"), path
    assert response.headers["x-content-type-options"] == "nosniff", path
    assert response.headers["referrer-policy"] == "same-origin", path
    assert response.headers["x-frame-options"] == "DENY", path
    csp = _directives(response.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"], (path, csp)
    assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"], (path, csp)
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"], (path, csp)
    return csp


def test_every_page_of_the_product_carries_the_security_headers(station) -> None:
    built = station()
    app = built.app
    assert _page_routes(app) == PAGES
    client = _signed_in(built)
    for path in sorted(PAGES):
        csp = _assert_page_headers(client.get(path), path)
        assert csp["img-src"] == ["'self'", "data:", "blob:"], "offline by default: no tile host"
    login = TestClient(app).get("/login")  # the one page served without a session
    _assert_page_headers(login, "/login")
    home = TestClient(app).get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/timeline"


def test_pages_without_a_session_send_the_browser_to_login(station) -> None:
    client = TestClient(station().app)
    for path in sorted(PAGES - {"/login"}):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}", path


def test_every_static_asset_is_served_with_nosniff_and_its_type(station) -> None:
    client = TestClient(station().app)
    assets = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())
    assert any(p.name == "leaflet.js" for p in assets), "the map library is not vendored"
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
    for asset in assets:
        path = "/static/" + asset.relative_to(STATIC_DIR).as_posix()
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        expected = types.get(asset.suffix)
        if expected:
            assert response.headers["content-type"].startswith(expected), (path, response.headers["content-type"])


def test_pages_load_only_same_origin_assets_that_exist_and_no_inline_code(station) -> None:
    client = _signed_in(station())
    for path in sorted(PAGES):
        html = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{path}: inline script"
        assert "<style" not in html and not re.search(r"\sstyle=", html), f"{path}: inline style"
        assert not re.search(r"\son[a-z]+=", html), f"{path}: inline event handler"
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            if ref.startswith("/static/"):
                assert client.get(ref).status_code == 200, (path, ref)
            else:
                assert ref.startswith("/") and not ref.startswith("//"), (path, ref)


def test_configured_tiles_reach_the_map_and_only_their_host_is_allowed(station) -> None:
    built = station(tiles_url=TILES, tiles_attribution="© Example <tiles>")
    client = _signed_in(built)
    csp = _directives(client.get("/map").headers["content-security-policy"])
    assert csp["img-src"] == ["'self'", "data:", "blob:", "https://*.tiles.example.org"]
    assert csp["connect-src"] == ["'self'"]
    config = client.get("/static/config.js")
    assert config.headers["x-content-type-options"] == "nosniff"
    assert config.headers["content-type"].startswith("text/javascript")
    assert TILES in config.text and "\\u003ctiles>" in config.text and "<tiles>" not in config.text


@pytest.mark.parametrize(
    "url", ["ftp://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org/tile.png", "https://'x/{z}/{x}/{y}"]
)
def test_a_tiles_url_that_is_no_tile_template_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="tiles_url"):
        GroundStationConfig.model_validate({"web": {"tiles_url": url}})


def test_every_page_shares_one_layout_with_its_own_title_and_one_navigation_bar(station) -> None:
    client = _signed_in(station())
    titles = set()
    for path in sorted(PAGES):
        html = client.get(path).text
        assert html.startswith("<!doctype html>") and html.count("<main") == 1, path
        assert html.count('<header id="nav"') == (0 if path == "/login" else 1), path
        assert html.index('src="/static/config.js"') < html.index('src="/static/app.js"'), path
        assert "{%" not in html and "{{" not in html, f"{path}: template markup left unrendered"
        titles.add(re.search(r"<title>(.*) · SmartEye</title>", html).group(1))
    assert len(titles) == len(PAGES), "each page keeps its own title"
