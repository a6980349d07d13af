"""The per-frame boxes message of a passthrough stream, as a WHEP session sends it on its data channel."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import EncodedPacket
from smarteye.media.webrtc import BOXES_BUFFER_LIMIT, WhepSession
from smarteye.wire.messages import VideoBoxes

BOXES = b'[{"track_id":3,"class_id":0,"label":"person #3 0.90","colour":"#ff3838","x1":1.5,"y1":2,"x2":30,"y2":40}]'


class Channel(SimpleNamespace):
    readyState = "open"
    bufferedAmount = 0

    def send(self, text: str) -> None:
        self.sent.append(text)


def session_with_channel() -> tuple[WhepSession, Channel]:
    session = WhepSession("s", PacketFanout("cam-1"), None, None, node="edge_2")  # type: ignore[arg-type]
    channel = Channel(sent=[])
    session.channel = channel  # type: ignore[assignment]
    return session, channel


def test_each_forwarded_frame_sends_its_boxes_as_a_valid_video_boxes_message() -> None:
    session, channel = session_with_channel()
    session.before_send(EncodedPacket("cam-1", b"x", 9000, True, 1_795_565_758.123456, 1280, 720, BOXES))
    session.before_send(EncodedPacket("cam-1", b"x", 12000, False, 1_795_565_758.2, 1280, 720))  # burned in: none
    assert len(channel.sent) == 1 and session.boxes_sent == 1
    message = VideoBoxes.model_validate_json(channel.sent[0])
    assert (message.node, message.stream, message.width, message.height) == ("edge_2", "cam-1", 1280, 720)
    assert message.capture_time == pytest.approx(1_795_565_758.123456)
    assert message.boxes[0].track_id == 3 and message.boxes[0].x1 == 1.5


def test_a_viewer_whose_channel_fell_behind_skips_boxes_instead_of_queueing_them() -> None:
    session, channel = session_with_channel()
    channel.bufferedAmount = BOXES_BUFFER_LIMIT + 1
    session.before_send(EncodedPacket("cam-1", b"x", 9000, True, 1.0, 64, 48, BOXES))
    assert channel.sent == [] and session.boxes_skipped == 1
