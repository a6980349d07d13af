"""The edge's own WHEP endpoint app: bearer token enforced when set, CORS only for the configured origins
(it answered `*` to every page before)."""

from __future__ import annotations

import asyncio

import httpx

from edge.config.video import VideoConfig
from edge.outputs.video.service import LiveVideo

TOKEN = "edge-whep-token-0123456789"


def test_edge_whep_answers_no_cors_by_default_and_only_listed_origins_when_configured() -> None:
    asyncio.run(_check_cors_and_token())


async def _check_cors_and_token() -> None:
    preflight = {"Origin": "https://any.example", "Access-Control-Request-Method": "POST"}
    live = LiveVideo(VideoConfig(), "node1", ["cam"], {0: "person"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=live.whep_app()), base_url="http://edge") as c:
        response = await c.options("/whep/cam", headers=preflight)
        assert response.status_code == 403 and "access-control-allow-origin" not in response.headers
        response = await c.get("/streams", headers={"Origin": "https://any.example"})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers

    config = VideoConfig.model_validate(
        {"whep": {"host": "0.0.0.0", "token": TOKEN, "cors_origins": ["https://player.example.org"]}}
    )
    live = LiveVideo(config, "node1", ["cam"], {0: "person"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=live.whep_app()), base_url="http://edge") as c:
        allowed = {**preflight, "Origin": "https://player.example.org"}
        response = await c.options("/whep/cam", headers=allowed)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "https://player.example.org"
        offer = {"Content-Type": "application/sdp", "Origin": "https://player.example.org"}
        response = await c.post("/whep/cam", content="v=0\r\nm=video 9", headers=offer)
        assert response.status_code == 401  # the token is required, and the player can read why
        assert response.headers["access-control-allow-origin"] == "https://player.example.org"
        response = await c.post("/whep/nope", content="v=0", headers={**offer, "Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404
        response = await c.options("/whep/cam", headers=preflight)
        assert response.status_code == 403
