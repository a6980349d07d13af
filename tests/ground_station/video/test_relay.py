"""The station's video relay: real H.264 packets from an edge uplink reach station viewers decodable,
malformed messages are counted and skipped, keyframe requests go up, and pts keep rising across restarts."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from edge.config.video import EncoderConfig
from smarteye.media.packet import EncodedPacket
from smarteye.wire.messages import VideoState, VideoStreamState
from tests.support.h264 import Encoding, decode, picture
from tests.support.polling import wait_for
from tests.support.video_packets import make_packet, wire_message
from tests.support.video_station import VideoStation, bearer


@pytest.fixture(scope="module")
def h264_packets() -> list[EncodedPacket]:
    """Six real 160x120 packets (a keyframe, then P-frames)."""
    enc = Encoding(EncoderConfig(keyframe_interval_s=30))
    enc.encoder.start()
    try:
        return [enc.encode(picture(160, 120, i), 500.0 + i * 0.125) for i in range(6)]
    finally:
        enc.encoder.stop()


def test_uplink_relays_good_packets_skips_malformed_ones_and_forwards_keyframe_requests(
    video_station: VideoStation, h264_packets: list[EncodedPacket]
) -> None:
    """Station viewers get exactly the edge's packets (decodable), bad messages are counted, never fatal."""
    relay = video_station.relay
    bad_messages = [
        b"short",
        wire_message(version=9),
        EncodedPacket("bad name", b"x", 0, True, 0.0, 2, 2).to_wire(),  # refused stream name
    ]
    with TestClient(video_station.app).websocket_connect(
        "/api/video/uplink?node=e1", headers=bearer(video_station.edge_token)
    ) as ws:
        live = VideoStreamState(node="e1", stream="cam", state=VideoState.LIVE, time=time.time())
        ws.send_text(live.model_dump_json())  # the station learns the stream before its first packet
        wait_for(lambda: relay.fanout("e1", "cam") is not None)
        fanout = relay.fanout("e1", "cam")
        assert fanout is not None
        reader = fanout.subscribe_thread(maxsize=100)  # a viewer joins: a keyframe request goes up the uplink
        request = ws.receive_json()
        assert (request["kind"], request["node"], request["stream"]) == ("keyframe", "e1", "cam")

        for index, packet in enumerate(h264_packets):
            ws.send_bytes(packet.to_wire())
            if index < len(bad_messages):  # interleaved: good packets keep flowing after each bad one
                ws.send_bytes(bad_messages[index])
        ws.send_text("{not json")
        received = [reader.get(3) for _ in h264_packets]
        wait_for(lambda: relay.stats.bad_messages == len(bad_messages) + 1)
        assert received == h264_packets
        assert relay.stats.packets == len(h264_packets)
        assert [row["stream"] for row in relay.streams()] == ["cam"]  # 'bad name' got no fan-out
        row = relay.streams()[0]
        assert (row["state"], row["width"], row["height"], row["viewers"], row["uplink"]) == ("live", 160, 120, 1, True)
        assert row["whep"] == "/api/whep/e1/cam"

        down = VideoStreamState(node="e1", stream="cam", state=VideoState.DOWN, reason="camera lost", time=time.time())
        ws.send_text(down.model_dump_json())
        wait_for(lambda: fanout.status().state is VideoState.DOWN)
        assert fanout.status().reason == "camera lost"

    frames = decode(received)  # type: ignore[arg-type]
    assert [f.shape for f in frames] == [(120, 160, 3)] * len(h264_packets)
    assert all(f.std() > 30 for f in frames)
    wait_for(lambda: not relay.streams()[0]["uplink"])
    assert fanout.status().reason == "the edge node's video uplink is disconnected"
    reader.close()


def test_relayed_timestamps_keep_rising_when_the_edge_restarts() -> None:
    """A restarted edge counts pts from 0 again; the station's viewers must still see rising timestamps."""
    from ground_station.video.relay import _PtsRebase

    rebase = _PtsRebase()
    first = [rebase(make_packet(pts=p)).pts for p in (0, 9000, 18000)]
    after_restart = [rebase(make_packet(pts=p)).pts for p in (0, 9000)]
    assert first == [0, 9000, 18000]
    assert after_restart == [21000, 30000]
    same = make_packet(pts=40000)
    assert rebase(same).pts == 40000 + 21000


def test_each_node_has_its_own_stream_limit_and_a_gone_nodes_streams_are_freed(
    video_station: VideoStation, h264_packets: list[EncodedPacket]
) -> None:
    """One node's token filling its streams does not block another node's video; once a node stays
    disconnected its unwatched streams are freed (the watched one is kept until its viewer leaves)."""
    from ground_station.auth.roles import Role

    relay = video_station.relay
    relay.max_streams_per_node, relay.free_after_s = 2, 0.3
    _, e2_token = video_station.accounts.create_token("e2", Role.EDGE, "test")
    packet = h264_packets[0]

    def send(ws: object, stream: str) -> None:
        ws.send_bytes(EncodedPacket(stream, packet.data, packet.pts, True, packet.capture_time, 160, 120).to_wire())  # type: ignore[attr-defined]

    # one event loop for the whole test (the freeing runs there after the sockets are gone)
    with (
        TestClient(video_station.app) as client,
        client.websocket_connect("/api/video/uplink?node=e1", headers=bearer(video_station.edge_token)) as e1,
    ):
        for stream in ("a", "b", "c", "d"):  # c and d are over e1's limit
            send(e1, stream)
        wait_for(lambda: relay.stats.bad_messages == 2)
        assert sorted(s for n, s in relay.fanouts if n == "e1") == ["a", "b"]
        with client.websocket_connect("/api/video/uplink?node=e2", headers=bearer(e2_token)) as e2:
            send(e2, "a")
            wait_for(lambda: relay.fanout("e2", "a") is not None)
        watched = relay.fanout("e1", "a")
        assert watched is not None
        reader = watched.subscribe_thread(maxsize=4)
        e1.close()
        wait_for(lambda: set(relay.fanouts) == {("e1", "a")}, timeout=10)  # e2's and e1's unwatched: freed
        assert relay.stats.streams_freed == 2
        reader.close()
        wait_for(lambda: not relay.fanouts, timeout=10)
        assert relay.stats.streams_freed == 3


def test_passthrough_boxes_reach_station_viewers_with_their_frame(
    video_station: VideoStation, h264_packets: list[EncodedPacket]
) -> None:
    """A forwarded stream's boxes travel inside each packet: the station's viewers get every frame with its own
    boxes, also when the relay re-stamps the timestamps after an edge restart."""
    import dataclasses

    from ground_station.video.relay import _PtsRebase

    sent = [
        dataclasses.replace(p, boxes=f'[{{"track_id":{i},"x1":{i}.5}}]'.encode(), _av_packet=None)
        for i, p in enumerate(h264_packets)
    ]
    with TestClient(video_station.app).websocket_connect(
        "/api/video/uplink?node=e1", headers=bearer(video_station.edge_token)
    ) as ws:
        live = VideoStreamState(node="e1", stream="cam", state=VideoState.LIVE, time=time.time())
        ws.send_text(live.model_dump_json())
        wait_for(lambda: video_station.relay.fanout("e1", "cam") is not None)
        reader = video_station.relay.fanout("e1", "cam").subscribe_thread(maxsize=100)  # type: ignore[union-attr]
        ws.receive_json()  # the keyframe request
        for packet in sent:
            ws.send_bytes(packet.to_wire())
        received = [reader.get(3) for _ in sent]
        reader.close()
    assert [p.boxes for p in received] == [p.boxes for p in sent]  # type: ignore[union-attr]
    rebase = _PtsRebase()
    rebase(make_packet(pts=90_000))
    assert rebase(sent[1]).boxes == sent[1].boxes  # re-stamped after a restart, boxes kept
