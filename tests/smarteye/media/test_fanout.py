"""The packet fan-out: every consumer starts at a keyframe, a slow one loses only its own backlog, thread
and asyncio readers, and the stream status viewers are shown."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

import smarteye.media.fanout as fanout_module
from smarteye.media.fanout import STALE_AFTER_S, PacketFanout
from smarteye.wire.messages import VideoState
from tests.support.video_packets import make_packet


def test_consumer_starts_at_a_keyframe_and_joining_asks_for_one() -> None:
    """A newcomer must never be handed a P-frame it cannot decode, and should not wait a whole GOP."""
    requests = []
    fanout = PacketFanout("cam", lambda: requests.append(1))
    reader = fanout.subscribe_thread()
    assert len(requests) == 1 and fanout.consumers == 1
    for packet in (make_packet(pts=0), make_packet(pts=1), make_packet(keyframe=True, pts=2), make_packet(pts=3)):
        fanout.publish(packet)
    assert [reader.get(0).pts for _ in range(2)] == [2, 3]  # type: ignore[union-attr]
    assert reader.get(0) is None
    assert reader.queue.dropped == 2


def test_full_queue_drops_its_backlog_resumes_at_a_keyframe_and_spares_other_consumers() -> None:
    """A slow consumer loses its queue and asks for a keyframe once, when it reads again (a stalled one never
    forces keyframes on everybody); a fast one still gets everything."""
    requests = []
    fanout = PacketFanout("cam", lambda: requests.append(1))
    slow, fast = fanout.subscribe_thread(maxsize=3), fanout.subscribe_thread(maxsize=100)
    requests.clear()
    packets = [
        make_packet(keyframe=True, pts=0),
        *(make_packet(pts=i) for i in range(1, 6)),
        make_packet(keyframe=True, pts=6),
    ]
    packets.append(make_packet(pts=7))
    for packet in packets:
        fanout.publish(packet)
    # slow: 0, 1, 2 queued; 3 finds it full (0, 1, 2 dropped); 3, 4, 5 dropped waiting for a keyframe; 6, 7 kept
    assert requests == []  # not while it does not read
    assert slow.queue.dropped == 6
    assert [slow.get(0).pts for _ in range(2)] == [6, 7]  # type: ignore[union-attr]
    assert len(requests) == 1
    assert slow.get(0) is None
    assert [fast.get(0).pts for _ in range(8)] == list(range(8))  # type: ignore[union-attr]
    assert fast.queue.dropped == 0


def test_closed_reader_receives_nothing_more() -> None:
    """A viewer that left must not keep a queue (or count as a consumer) on the fan-out."""
    fanout = PacketFanout("cam")
    reader, other = fanout.subscribe_thread(), fanout.subscribe_thread()
    reader.close()
    fanout.publish(make_packet(keyframe=True))
    assert fanout.consumers == 1
    assert reader.get(0) is None and other.get(0) is not None


def test_thread_reader_times_out_and_is_woken_by_a_publish_from_another_thread() -> None:
    """The MPEG-TS muxer blocks in get(): it must return None on timeout and wake as soon as a packet comes."""
    fanout = PacketFanout("cam")
    reader = fanout.subscribe_thread(maxsize=1000)
    started = time.monotonic()
    assert reader.get(0.05) is None
    assert time.monotonic() - started < 1

    def produce() -> None:
        time.sleep(0.02)
        for pts in range(200):
            fanout.publish(make_packet(keyframe=pts == 0, pts=pts))

    producer = threading.Thread(target=produce)
    producer.start()
    received = []
    while len(received) < 200:
        packet = reader.get(2)
        assert packet is not None, f"woken too late after {len(received)} packets"
        received.append(packet.pts)
    producer.join()
    assert received == list(range(200))


def test_async_reader_gets_packets_published_from_another_thread() -> None:
    """WebRTC senders and the uplink await get() on the loop while the encoder thread publishes."""
    fanout = PacketFanout("cam")

    async def main() -> list[int]:
        reader = fanout.subscribe_async(asyncio.get_running_loop(), maxsize=100)
        producer = threading.Timer(
            0.02, lambda: [fanout.publish(make_packet(keyframe=p == 0, pts=p)) for p in range(5)]
        )
        producer.start()
        try:
            return [(await asyncio.wait_for(reader.get(), 2)).pts for _ in range(5)]
        finally:
            producer.join()
            reader.close()

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert fanout.consumers == 0


def test_status_waiting_live_fps_stale_and_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Viewers are told why there is no picture: waiting before the first packet, down when stale or told so."""
    now = [1000.0]
    monkeypatch.setattr(fanout_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    fanout = PacketFanout("cam")
    status = fanout.status()
    assert (status.state, status.fps, status.packets, status.width) == (VideoState.WAITING, 0.0, 0, None)

    fanout.subscribe_thread()
    for i in range(11):  # 10 fps for one second
        now[0] = 1000.0 + i * 0.1
        fanout.publish(make_packet(keyframe=i == 0, pts=i))
    status = fanout.status()
    assert (status.state, status.reason, status.width, status.height) == (VideoState.LIVE, None, 640, 480)
    assert (status.fps, status.packets, status.consumers) == (10.0, 11, 1)

    now[0] += STALE_AFTER_S + 1.0  # no packet for 3 s
    status = fanout.status()
    assert (status.state, status.reason, status.fps) == (VideoState.DOWN, "no video for 3 s", 0.0)

    fanout.publish(make_packet(keyframe=True, pts=20))
    assert fanout.status().state is VideoState.LIVE
    fanout.set_down("camera unplugged")
    status = fanout.status()
    assert (status.state, status.reason) == (VideoState.DOWN, "camera unplugged")
    fanout.publish(make_packet(pts=21))  # the source came back
    assert (fanout.status().state, fanout.status().reason) == (VideoState.LIVE, None)


def test_a_viewer_starts_at_the_newest_keyframe_not_at_what_queued_during_set_up() -> None:
    """Packets that piled up during ICE/DTLS are skipped up to the last keyframe; with none, it waits for one."""
    requests: list[int] = []
    fanout = PacketFanout("cam", lambda: requests.append(1))
    reader = fanout.subscribe_thread(maxsize=100)
    for pts, key in enumerate((True, False, False, True, False)):
        fanout.publish(make_packet(keyframe=key, pts=pts))
    reader.queue.skip_to_latest_keyframe()
    assert [reader.get(0).pts for _ in range(2)] == [3, 4]  # type: ignore[union-attr]
    fanout.publish(make_packet(pts=5))
    requests.clear()
    reader.queue.skip_to_latest_keyframe()  # only a P-frame queued: drop it, wait for (and ask) a keyframe
    assert reader.get(0) is None and requests == [1]
    fanout.publish(make_packet(pts=6))
    fanout.publish(make_packet(keyframe=True, pts=7))
    assert reader.get(0).pts == 7  # type: ignore[union-attr]
