"""The H.264 stream encoder with real libx264: decodable pictures, pts from capture times, keyframes,
scaling, size changes, latest-frame-wins and a bad frame that must not stop it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edge.config.video import EncoderConfig
from edge.outputs.video.encoder import BACKLOG
from tests.support.h264 import Encoding, decode, picture
from tests.support.polling import wait_for


@pytest.fixture
def encoding() -> Iterator[Encoding]:
    enc = Encoding(EncoderConfig(keyframe_interval_s=30))
    enc.encoder.start()
    yield enc
    enc.encoder.stop()


def test_encoder_packets_decode_to_the_source_picture_with_pts_from_capture_times(encoding: Encoding) -> None:
    """The first packet is a keyframe, pts count 90 kHz from the first capture time, and the pictures survive."""
    captures = [1000.0, 1000.125, 1000.25, 1000.5]
    packets = [encoding.encode(picture(160, 120, i), t) for i, t in enumerate(captures)]
    assert [p.pts for p in packets] == [0, 11_250, 22_500, 45_000]
    assert [p.keyframe for p in packets] == [True, False, False, False]
    assert [p.capture_time for p in packets] == captures
    assert all((p.stream, p.width, p.height) == ("cam", 160, 120) for p in packets)
    assert packets[0].data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))  # Annex B

    frames = decode(packets)
    assert len(frames) == 4
    for step, frame in enumerate(frames):
        assert frame.shape == (120, 160, 3)
        assert frame.std() > 30  # not flat grey mush
        x = 8 + 6 * step
        assert frame[20:44, x + 4 : x + 28, 2].mean() > 180  # the red square, where it was drawn
        assert frame[70:, :, 2].mean() < 40  # and no red elsewhere
    assert encoding.encoder.frames_encoded == 4


def test_encoder_pts_stay_strictly_increasing_when_capture_times_repeat_or_go_back(encoding: Encoding) -> None:
    """Clock jumps on the source must not produce duplicate or backwards pts (RTP and MPEG-TS need order)."""
    times = [50.0, 50.5, 50.5, 50.25, 51.0]
    pts = [encoding.encode(picture(64, 48, i), t).pts for i, t in enumerate(times)]
    assert pts == [0, 45_000, 45_001, 45_002, 90_000]


def test_encoder_keyframes_periodic_on_request_and_after_a_gap() -> None:
    """Keyframes come every keyframe_interval_s of capture time, when asked, and after a source pause."""
    periodic = Encoding(EncoderConfig(keyframe_interval_s=1.0))
    periodic.encoder.start()
    try:
        flags = [periodic.encode(picture(64, 48, i), 10.0 + i * 0.25).keyframe for i in range(9)]
    finally:
        periodic.encoder.stop()
    assert flags == [True, False, False, False, True, False, False, False, True]

    asked = Encoding(EncoderConfig(keyframe_interval_s=30))
    asked.encoder.start()
    try:
        flags = [asked.encode(picture(64, 48, 0), 10.0).keyframe, asked.encode(picture(64, 48, 1), 10.25).keyframe]
        asked.fanout.request_keyframe()  # a viewer joined or lost packets
        flags.append(asked.encode(picture(64, 48, 2), 10.5).keyframe)
        flags.append(asked.encode(picture(64, 48, 3), 10.75).keyframe)
        flags.append(asked.encode(picture(64, 48, 4), 12.0).keyframe)  # 1.25 s without frames
        flags.append(asked.encode(picture(64, 48, 5), 12.25).keyframe)
    finally:
        asked.encoder.stop()
    assert flags == [True, False, True, False, True, False]


def test_encoder_downscales_to_max_width_and_evens_odd_sizes() -> None:
    """4:2:0 needs even sizes; wide sources are scaled down (aspect kept) before encoding."""
    enc = Encoding(EncoderConfig(max_width=320))
    enc.encoder.start()
    try:
        wide = enc.encode(picture(640, 360), 1.0)
        odd = enc.encode(picture(161, 121), 1.1)
    finally:
        enc.encoder.stop()
    assert (wide.width, wide.height) == (320, 180)
    assert (odd.width, odd.height) == (160, 120)
    assert [f.shape for f in decode([wide])] == [(180, 320, 3)]
    assert [f.shape for f in decode([odd])] == [(120, 160, 3)]


def test_encoder_size_change_reopens_the_codec_with_a_keyframe(encoding: Encoding) -> None:
    """A source that changes resolution mid-stream restarts cleanly: keyframe, new size, pts still rising."""
    first = [encoding.encode(picture(160, 120, i), 7.0 + i * 0.125) for i in range(2)]
    second = [encoding.encode(picture(96, 64, i), 7.25 + i * 0.125) for i in range(2)]
    assert [p.keyframe for p in first + second] == [True, False, True, False]
    assert [(p.width, p.height) for p in second] == [(96, 64)] * 2
    pts = [p.pts for p in first + second]
    assert pts == sorted(set(pts))
    assert [f.shape for f in decode(second)] == [(64, 96, 3)] * 2


def test_encoder_backlog_is_bounded_and_the_oldest_frames_go_first() -> None:
    """Frames that arrive while the encoder is busy wait, BACKLOG at most: beyond, the oldest are dropped (counted),
    so a busy moment costs a few frames of latency at most and the encoder never falls behind the camera."""
    enc = Encoding()
    for i in range(BACKLOG + 2):
        enc.encoder.submit(picture(64, 48, i), 20.0 + i)
    assert enc.encoder.waiting == BACKLOG
    enc.encoder.start()
    try:
        packets = [enc.reader.get(5) for _ in range(BACKLOG)]
        assert [p.capture_time for p in packets if p is not None] == [20.0 + i for i in range(2, BACKLOG + 2)]
        assert enc.reader.get(0.1) is None
    finally:
        enc.encoder.stop()
    frames = (enc.encoder.frames_in, enc.encoder.frames_replaced, enc.encoder.frames_encoded)
    assert frames == (BACKLOG + 2, 2, BACKLOG)


def test_encoder_survives_a_frame_it_cannot_convert(encoding: Encoding) -> None:
    """One bad frame may be lost, but the next good one must still be encoded."""
    encoding.encode(picture(64, 48), 1.0)
    encoding.encoder.submit(np.zeros((48, 64), np.uint8), 1.1)  # grey, not BGR
    wait_for(lambda: encoding.encoder.waiting == 0)  # taken by the encoder (not replaced by the next one)
    encoding.encoder.submit(picture(64, 48, 1), 1.2)
    packet = encoding.reader.get(1)
    assert packet is not None and packet.capture_time == 1.2
