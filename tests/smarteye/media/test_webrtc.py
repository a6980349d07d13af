"""The aiortc WHEP server itself: the per-viewer timing message and the end of sessions that never connect."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os

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


def _open_descriptors() -> int:
    """This process's UDP sockets: descriptors whose socket inode is in /proc/self/net/udp{,6} (other
    descriptors come and go with the garbage collector of earlier tests)."""
    gc.collect()
    inodes = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            inodes.update(row.split()[9] for row in list(rows)[1:])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            count += link.startswith("socket:[") and link[8:-1] in inodes
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd")
def test_a_reaped_session_closes_its_udp_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reaper ran in the session's own watch task and cancelled itself before the peer connection closed:
    every never-connected viewer left its ICE UDP sockets open (descriptors exhausted round after round)."""
    from smarteye.media import webrtc

    monkeypatch.setattr(webrtc, "CONNECT_TIMEOUT_S", 0.3)
    fanout = PacketFanout("cam")
    server = WhepServer(max_sessions=8)

    async def main() -> tuple[int, int, int]:
        pc, offer = await client_offer()
        await pc.close()
        before = _open_descriptors()
        for _ in range(3):
            await server.create(offer, fanout, principal=f"viewer-{_}")
        during = _open_descriptors()
        for _ in range(50):
            if not server.sessions:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        return before, during, _open_descriptors()

    before, during, after = asyncio.run(main())
    assert during >= before + 3  # the sessions did hold UDP sockets
    assert not server.sessions and fanout.consumers == 0
    assert after == before, f"{after - before} UDP sockets left open by 3 reaped sessions"


def test_one_principal_cannot_take_every_session_slot() -> None:
    """Per-principal limit: 429 naming the limit for the one who has enough, others still get sessions."""
    from smarteye.media.webrtc import WhepError

    fanout = PacketFanout("cam")
    server = WhepServer(max_sessions=4, max_sessions_per_principal=2)

    async def main() -> None:
        pc, offer = await client_offer()
        try:
            await server.create(offer, fanout, principal="user:greedy")
            await server.create(offer, fanout, principal="user:greedy")
            with pytest.raises(WhepError) as refused:
                await server.create(offer, fanout, principal="user:greedy")
            assert refused.value.status == 429 and "already has 2 WHEP sessions" in str(refused.value)
            await server.create(offer, fanout, principal="user:other")
            assert server.principal_sessions("user:greedy") == 2 and len(server.sessions) == 3
            await server.delete(next(iter(server.sessions)))
            await server.create(offer, fanout, principal="user:greedy")  # a freed slot is usable again
        finally:
            await server.close_all()
            await pc.close()

    asyncio.run(main())
    assert fanout.consumers == 0
