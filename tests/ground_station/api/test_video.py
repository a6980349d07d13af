"""The station's live-video routes: who may open the uplink (and as which node), and who may list streams
and ask for WHEP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support.video_station import VideoStation, bearer, open_video_station
from tests.support.whep_viewer import SDP


@pytest.fixture(scope="module")
def video_station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoStation]:
    """One station for this module (each new one hashes with argon2, ~0.3 s): every test here is refused or
    only reads, so none changes what the next one sees."""
    with open_video_station(tmp_path_factory.mktemp("station")) as station:
        yield station


@pytest.mark.parametrize(
    ("who", "node", "code"),
    [
        (None, "e1", 4401),
        ("viewer", "e1", 4403),
        ("edge", "", 4400),
        ("edge", "bad%20name", 4400),
        ("edge", "a" * 65, 4400),
        ("edge", "e2", 4403),  # node e1's token cannot send as another node
    ],
)
def test_uplink_refuses_anonymous_wrong_role_and_bad_node_names(
    video_station: VideoStation, who: str | None, node: str, code: int
) -> None:
    """Only an edge token may push video, and the node name must be usable in URLs and topics."""
    headers = {} if who is None else bearer(video_station.edge_token if who == "edge" else video_station.viewer_token)
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        TestClient(video_station.app).websocket_connect(f"/api/video/uplink?node={node}", headers=headers),
    ):
        pass
    assert caught.value.code == code
    assert video_station.relay.stats.uplinks == 0


def test_uplink_refuses_a_node_name_with_a_trailing_newline(video_station: VideoStation) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        TestClient(video_station.app).websocket_connect(
            "/api/video/uplink?node=e1%0A", headers=bearer(video_station.edge_token)
        ),
    ):
        pass
    assert caught.value.code == 4400


def test_video_streams_and_station_whep_need_a_reader(video_station: VideoStation) -> None:
    """The stream list is for viewers: anonymous 401, an edge token (uplink only) 403; WHEP likewise."""
    client = TestClient(video_station.app)
    assert client.get("/api/video/streams").status_code == 401
    assert client.get("/api/video/streams", headers=bearer(video_station.edge_token)).status_code == 403
    response = client.get("/api/video/streams", headers=bearer(video_station.viewer_token))
    assert response.status_code == 200 and response.json() == []
    offer = "v=0\r\nm=video 9"
    assert client.post("/api/whep/e1/cam", content=offer, headers=SDP).status_code == 401
    response = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, **bearer(video_station.viewer_token)})
    assert response.status_code == 404


def test_station_whep_cors_for_configured_origins_and_sessions_limited_per_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A player on a configured origin may use the station's WHEP with a bearer token (preflight unauthenticated,
    answers and refusals readable); other origins get no CORS; one token holds at most its share of sessions."""
    import asyncio
    import time

    from ground_station.auth.roles import Role
    from smarteye.media.webrtc import WhepServer
    from smarteye.wire.messages import VideoState, VideoStreamState
    from tests.support.whep_viewer import client_offer

    player = "https://wall.example.org"
    whep = WhepServer(max_sessions=8, max_sessions_per_principal=1, cors_origins=[player])
    with open_video_station(tmp_path, whep=whep) as station, TestClient(station.app) as client:
        _, other_viewer = station.accounts.create_token("wall-2", Role.VIEWER, "test")
        with client.websocket_connect("/api/video/uplink?node=e1", headers=bearer(station.edge_token)) as uplink:
            live = VideoStreamState(node="e1", stream="cam", state=VideoState.LIVE, time=time.time())
            uplink.send_text(live.model_dump_json())
            for _ in range(100):
                if station.relay.fanout("e1", "cam") is not None:
                    break
                time.sleep(0.02)
            preflight = {"Origin": player, "Access-Control-Request-Method": "POST"}
            response = client.options("/api/whep/e1/cam", headers=preflight)
            assert response.status_code == 204 and response.headers["access-control-allow-origin"] == player
            response = client.options("/api/whep/e1/cam", headers={**preflight, "Origin": "https://evil.example"})
            assert response.status_code == 403 and "access-control-allow-origin" not in response.headers

            async def offer_text() -> str:  # a real viewer's offer; the viewer itself is not needed
                pc, offer = await client_offer()
                await pc.close()
                return offer

            offer = asyncio.run(offer_text())
            headers = {**SDP, **bearer(station.viewer_token), "Origin": player}
            response = client.post("/api/whep/e1/cam", content=offer, headers=headers)
            assert response.status_code == 201, response.text
            assert response.headers["access-control-allow-origin"] == player
            assert "Location" in response.headers["access-control-expose-headers"]
            response = client.post("/api/whep/e1/cam", content=offer, headers=headers)  # same token again
            assert response.status_code == 429 and response.headers["access-control-allow-origin"] == player
            response = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, "Origin": player})
            assert response.status_code == 401 and response.headers["access-control-allow-origin"] == player
            response = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, **bearer(other_viewer)})
            assert response.status_code == 201 and "access-control-allow-origin" not in response.headers
            assert len(whep.sessions) == 2
