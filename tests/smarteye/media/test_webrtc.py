"""The aiortc WHEP server itself: the per-viewer timing message and the end of sessions that never connect."""

from __future__ import annotations

import asyncio

import pytest

from smarteye.media.fanout import PacketFanout
from smarteye.media.webrtc import WhepServer
from tests.support.whep_viewer import client_offer


def test_frame_timing_fast_path_is_the_models_json() -> None:
    """The timing reference message is formatted from a template: it must stay a valid VideoFrameTiming."""
    from smarteye.media.webrtc import WhepSession
    from smarteye.wire.messages import VideoFrameTiming

    session = WhepSession("s", PacketFanout("cam-1"), None, None, node="edge_2")  # type: ignore[arg-type]
    text = session._timing_template % (2**32 - 1, 1_795_565_758.123456)
    timing = VideoFrameTiming.model_validate_json(text)
    assert (timing.node, timing.stream, timing.rtp_timestamp) == ("edge_2", "cam-1", 2**32 - 1)
    assert timing.capture_time == pytest.approx(1_795_565_758.123456)


def test_a_whep_session_whose_viewer_never_connects_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    """No trickle ICE: a viewer that vanishes before connecting must not hold a session slot forever."""
    from smarteye.media import webrtc

    monkeypatch.setattr(webrtc, "CONNECT_TIMEOUT_S", 0.5)
    fanout = PacketFanout("cam")
    server = WhepServer(max_sessions=1)

    async def main() -> None:
        pc, offer = await client_offer()
        await pc.close()  # the viewer is gone before ICE
        await server.create(offer, fanout)
        assert len(server.sessions) == 1 and fanout.consumers == 1
        for _ in range(40):
            if not server.sessions:
                break
            await asyncio.sleep(0.1)
        assert not server.sessions and fanout.consumers == 0
        await server.close_all()

    asyncio.run(main())
