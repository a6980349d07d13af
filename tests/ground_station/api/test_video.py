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
