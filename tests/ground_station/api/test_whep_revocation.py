"""The station's WHEP sessions end with their credential (issue 12), in the fast subset: a session opened with a
token or a browser session is closed (slot freed, fan-out reader gone) once the token is revoked or the user
deleted, and the closure is audited. tests/e2e/test_whep_revocation.py plays real video to real viewers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi.testclient import TestClient

from ground_station.auth.roles import Role
from smarteye.media.webrtc import WhepServer
from smarteye.wire.messages import VideoState, VideoStreamState
from tests.support.polling import wait_for
from tests.support.video_station import bearer, open_video_station
from tests.support.whep_viewer import SDP, client_offer

PASSWORD = "whep-revocation-1"


def _offer() -> str:
    async def offer_text() -> str:  # a real viewer's offer; the viewer itself is not needed
        pc, offer = await client_offer()
        await pc.close()
        return offer

    return asyncio.run(offer_text())


def test_revoking_the_token_or_deleting_the_user_ends_their_whep_sessions(tmp_path: Path) -> None:
    whep = WhepServer(recheck_s=0.1)
    with open_video_station(tmp_path, whep=whep) as station, TestClient(station.app) as client:
        station.accounts.create_user("ada", PASSWORD, Role.ADMIN)
        station.accounts.create_user("val", PASSWORD, Role.VIEWER)
        admin = TestClient(station.app)
        csrf = {"X-CSRF-Token": admin.post("/api/login", json={"username": "ada", "password": PASSWORD}).json()[
            "csrf_token"]}  # fmt: skip
        viewer = TestClient(station.app)
        viewer_csrf = {"X-CSRF-Token": viewer.post("/api/login", json={"username": "val", "password": PASSWORD})
                       .json()["csrf_token"]}  # fmt: skip
        with client.websocket_connect("/api/video/uplink?node=e1", headers=bearer(station.edge_token)) as uplink:
            live = VideoStreamState(node="e1", stream="cam", state=VideoState.LIVE, time=time.time())
            uplink.send_text(live.model_dump_json())
            wait_for(lambda: station.relay.fanout("e1", "cam") is not None)
            fanout = station.relay.fanout("e1", "cam")
            offer = _offer()
            by_token = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, **bearer(station.viewer_token)})
            # Through the client whose event loop stays up (the server's), where the sessions' checks run.
            cookie = {"Cookie": f"smarteye_session={viewer.cookies['smarteye_session']}"}
            by_user = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, **cookie, **viewer_csrf})
            assert (by_token.status_code, by_user.status_code) == (201, 201), (by_token.text, by_user.text)
            assert len(whep.sessions) == 2 and fanout is not None and fanout.consumers == 2

            token_id = next(t["id"] for t in station.accounts.list_tokens() if t["name"] == "wall")
            assert admin.delete(f"/api/tokens/{token_id}", headers=csrf).status_code == 200
            wait_for(lambda: len(whep.sessions) == 1)
            assert [s.principal for s in whep.sessions.values()] == ["principal:val"]  # the other one plays on
            assert admin.delete("/api/users/val", headers=csrf).status_code == 200
            wait_for(lambda: not whep.sessions)
            assert fanout.consumers == 0

            entries = admin.get("/api/audit", params={"action": "access.ended"}).json()["items"]
            assert sorted((e["actor"], e["target"], e["detail"]["via"]) for e in entries) == [
                ("token:wall", "whep e1/cam", "token"),
                ("val", "whep e1/cam", "session"),
            ]
            refused = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, **bearer(station.viewer_token)})
            assert refused.status_code == 401
