"""WHEP over HTTP: the status codes for bad offers, a session's lifecycle (201 + Location, DELETE) and the
session cap, against a real aiortc viewer offer, in an in-process app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from smarteye.media.fanout import PacketFanout
from smarteye.media.webrtc import WhepServer
from smarteye.media.whep_http import MAX_OFFER_BYTES, add_whep_routes
from tests.support.whep_viewer import SDP, client_offer


def _whep_app(
    server: WhepServer, fanouts: dict[str, PacketFanout], cors_origins: tuple[str, ...] = ()
) -> httpx.AsyncClient:
    app = FastAPI()

    def resolve(params: dict[str, Any]) -> tuple[PacketFanout, str] | None:
        fanout = fanouts.get(params.get("stream", ""))
        return (fanout, "edge-1") if fanout is not None else None

    add_whep_routes(app, "/whep/{stream}", server, resolve, cors_origins=cors_origins)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # an app error is a 500, as in production
    return httpx.AsyncClient(transport=transport, base_url="http://edge")


def test_whep_refuses_bad_offers_with_the_right_status_and_leaks_nothing() -> None:
    """Wrong type 415, too big 413, unknown stream 404, no video / garbage SDP 400 with a reason."""
    fanout = PacketFanout("cam")
    server = WhepServer()

    async def main() -> None:
        async with _whep_app(server, {"cam": fanout}) as client:
            response = await client.post(
                "/whep/cam", content="v=0\r\nm=video 9", headers={"Content-Type": "text/plain"}
            )
            assert response.status_code == 415
            response = await client.post("/whep/cam", content="v=0\r\nm=video 9")
            assert response.status_code == 415
            response = await client.post("/whep/cam", content="m=video " + "a" * MAX_OFFER_BYTES, headers=SDP)
            assert response.status_code == 413
            response = await client.post("/whep/nope", content="v=0\r\nm=video 9", headers=SDP)
            assert response.status_code == 404
            audio_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
            response = await client.post("/whep/cam", content=audio_only, headers=SDP)
            assert response.status_code == 400 and "no video section" in response.json()["detail"]
            for garbage in ("hello m=video", "v=0\r\nm=video\r\n", "m=video \xff\xfe"):
                response = await client.post("/whep/cam", content=garbage.encode(), headers=SDP)
                assert response.status_code == 400, (garbage, response.text)
                assert response.json()["detail"].startswith("cannot answer this SDP offer")
            response = await client.patch("/whep/cam/whatever")
            assert response.status_code == 405 and response.headers["allow"] == "DELETE"
        await server.close_all()

    asyncio.run(main())
    assert server.sessions == {} and fanout.consumers == 0


def test_whep_session_lifecycle_h264_answer_and_limits() -> None:
    """201 with a Location and an H.264-only sendonly answer; DELETE ends it once; the session cap answers 503."""
    cam, other = PacketFanout("cam"), PacketFanout("other")
    server = WhepServer(max_sessions=1)

    async def main() -> None:
        pc, offer = await client_offer()
        pc2, offer2 = await client_offer()
        try:
            async with _whep_app(server, {"cam": cam, "other": other}) as client:
                response = await client.post(
                    "/whep/cam", content=offer, headers={"Content-Type": "application/sdp; x=1"}
                )
                assert response.status_code == 201, response.text
                assert response.headers["content-type"] == "application/sdp"
                location = response.headers["location"]
                assert location.startswith("/whep/cam/") and len(location) > len("/whep/cam/")
                answer = response.text
                codecs = {
                    line.split(" ")[1].split("/")[0] for line in answer.splitlines() if line.startswith("a=rtpmap:")
                }
                assert "H264" in codecs and codecs <= {"H264", "rtx"}, codecs
                assert "a=sendonly" in answer and "m=application" in answer
                assert cam.consumers == 1 and server.viewers(cam) == 1

                response = await client.post("/whep/other", content=offer2, headers=SDP)
                assert response.status_code == 503

                session_id = location.rsplit("/", 1)[1]
                assert (await client.delete(f"/whep/other/{session_id}")).status_code == 404  # not that stream's
                assert (await client.delete(location)).status_code == 200
                assert (await client.delete(location)).status_code == 404
                assert cam.consumers == 0 and server.sessions == {}
        finally:
            await server.close_all()
            await pc.close()
            await pc2.close()

    asyncio.run(main())


def test_whep_offer_without_dtls_setup_is_a_400_and_leaks_no_consumer() -> None:
    fanout = PacketFanout("cam")
    server = WhepServer()
    result: dict[str, Any] = {}

    async def main() -> None:
        pc, offer = await client_offer()
        no_setup = "\r\n".join(line for line in offer.split("\r\n") if not line.startswith("a=setup"))
        try:
            async with _whep_app(server, {"cam": fanout}) as client:
                response = await client.post("/whep/cam", content=no_setup, headers=SDP)
                result["status"], result["consumers"] = response.status_code, fanout.consumers
        finally:
            await server.close_all()
            await pc.close()

    asyncio.run(main())
    assert result == {"status": 400, "consumers": 0}


def test_whep_cors_answers_only_the_configured_origins() -> None:
    """No `*`: a configured player origin gets its preflight and readable answers (Location exposed, errors
    too); any other origin gets no CORS header at all, and its preflight is a 403."""
    fanout = PacketFanout("cam")
    server = WhepServer()
    player = "https://player.example.org"

    async def main() -> None:
        pc, offer = await client_offer()
        try:
            async with _whep_app(server, {"cam": fanout}, cors_origins=(player,)) as client:
                preflight = {"Origin": player, "Access-Control-Request-Method": "POST"}
                response = await client.options("/whep/cam", headers=preflight)
                assert response.status_code == 204
                assert response.headers["access-control-allow-origin"] == player
                assert "POST" in response.headers["access-control-allow-methods"]
                assert "Authorization" in response.headers["access-control-allow-headers"]
                response = await client.options(
                    "/whep/cam/abc", headers={**preflight, "Origin": "https://evil.example"}
                )
                assert response.status_code == 403 and "access-control-allow-origin" not in response.headers

                response = await client.post("/whep/cam", content=offer, headers={**SDP, "Origin": player})
                assert response.status_code == 201, response.text
                assert response.headers["access-control-allow-origin"] == player
                assert response.headers["access-control-expose-headers"] == "Location"
                location = response.headers["location"]
                response = await client.post("/whep/nope", content=offer, headers={**SDP, "Origin": player})
                assert response.status_code == 404 and response.headers["access-control-allow-origin"] == player
                response = await client.delete(location, headers={"Origin": "https://evil.example"})
                assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        finally:
            await server.close_all()
            await pc.close()

    asyncio.run(main())


def test_whep_sessions_are_limited_per_client_address_by_default() -> None:
    """Without a principal function the client's address is the principal: the (max+1)th offer is a 429."""
    fanout = PacketFanout("cam")
    server = WhepServer(max_sessions=8, max_sessions_per_principal=1)

    async def main() -> None:
        pc, offer = await client_offer()
        try:
            async with _whep_app(server, {"cam": fanout}) as client:
                assert (await client.post("/whep/cam", content=offer, headers=SDP)).status_code == 201
                response = await client.post("/whep/cam", content=offer, headers=SDP)
                assert response.status_code == 429 and "already has 1 WHEP sessions" in response.json()["detail"]
        finally:
            await server.close_all()
            await pc.close()

    asyncio.run(main())
