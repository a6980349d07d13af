"""The live video at the camera's rate with real libx264 and a real MPEG-TS/UDP output: every frame the source
thread taps is encoded, boxes of the latest detection are carried to the frames between detections (moved to
each frame's time), an unwatched stream costs nothing, and the MPEG-TS stream declares the source's real rate."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import av
import numpy as np
import pytest

from edge.config.video import VideoConfig
from edge.frame import Frame
from edge.outputs.video.service import LiveVideo
from edge.track.tracker import TrackedBox
from smarteye.sim.ports import free_udp_port

FPS = 25.0
T0 = 1_700_000_000.0
SIZE = (320, 240)
BOX_BGR = np.array((56, 56, 255))  # the annotator's colour for class 0


def grey_frame(seq: int) -> Frame:
    image = np.full((SIZE[1], SIZE[0], 3), 110, np.uint8)
    return Frame.from_bgr("cam", seq, T0 + seq / FPS, seq / FPS, image)


def detected(seq: int, x: float) -> Frame:
    frame = grey_frame(seq)
    frame.tracks = [TrackedBox(1, x, 80, x + 40, 180, 0.9, 0)]
    return frame


def box_left_edge(picture: np.ndarray) -> int | None:
    """The leftmost column that is box-coloured over most of the box's height."""
    rows = picture[100:160].astype(int)
    close = (np.abs(rows - BOX_BGR).max(axis=2) < 60).mean(axis=0)
    columns = np.flatnonzero(close > 0.8)
    return int(columns[0]) if columns.size else None


@pytest.fixture
def video() -> Iterator[LiveVideo]:
    config = VideoConfig.model_validate(
        {"whep": {"enabled": False}, "annotation": {"labels": False, "overlay": False}, "encoder": {"crf": 18}}
    )
    live = LiveVideo(config, "node1", ["cam"], {0: "person"})
    live.start()
    yield live
    live.stop()


def test_every_tapped_frame_is_encoded_with_boxes_moved_to_its_time(video: LiveVideo) -> None:
    reader = video.fanouts["cam"].subscribe_thread(maxsize=1000)
    packets = []
    for seq in range(0, 21):
        video.tap(grey_frame(seq))  # as the source thread does, before detection sees the frame
        packet = reader.get(5 if seq >= 2 else 0.3)
        if seq < 2:  # the rate is known from the third frame: the stream starts with it
            assert packet is None, f"frame {seq} was encoded before the rate was known"
            continue
        assert packet is not None, f"frame {seq} was not encoded"
        packets.append(packet)
        if seq == 2:  # frame 0's detection finishes as frame 2 is shown: its boxes are on the frames that follow
            video.consume(detected(0, 40.0))
        if seq == 10:
            video.consume(detected(10, 80.0))  # 40 px in 0.4 s: 100 px/s, i.e. 4 px a frame
    reader.close()
    assert [p.capture_time for p in packets] == [T0 + seq / FPS for seq in range(2, 21)]  # every frame, in order
    assert video.encoders["cam"].frames_replaced == 0

    decoder = av.CodecContext.create("h264", "r")
    pictures = [f.to_ndarray(format="bgr24") for p in [*packets, None] for f in decoder.decode(
        None if p is None else av.Packet(p.data))]  # fmt: skip
    assert len(pictures) == 19
    lefts = [None, None, *(box_left_edge(picture) for picture in pictures)]  # indexed by seq
    assert lefts[2] is None  # nothing detected yet
    assert all(abs(lefts[seq] - 40) <= 2 for seq in range(3, 11)), lefts  # one detection: a still box
    for seq in range(11, 21):  # two detections: moving at 4 px a frame, drawn where it is at each frame
        assert lefts[seq] is not None and abs(lefts[seq] - (80 + 4 * (seq - 10))) <= 2, (seq, lefts)
    # the encoder drew on its own copy: the source's (shared) picture is untouched
    assert (grey_frame(3).bgr() == 110).all()


def test_a_stream_nobody_watches_is_neither_converted_nor_encoded(video: LiveVideo) -> None:
    frame = Frame.from_av("cam", 1, T0, 0.0, av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), "bgr24"))
    video.tap(frame)
    assert frame._bgr is None and video.encoders["cam"].frames_in == 0


def test_mpegts_udp_output_declares_the_sources_real_rate() -> None:
    port = free_udp_port()
    config = VideoConfig.model_validate({"whep": {"enabled": False}, "udp_outputs": {"cam": f"udp://127.0.0.1:{port}"}})
    live = LiveVideo(config, "node1", ["cam"], {0: "person"})
    received: dict[str, object] = {}

    def listen() -> None:
        container = av.open(f"udp://127.0.0.1:{port}", format="mpegts", timeout=10)
        try:
            stream = container.streams.video[0]
            times = [frame.time for _, frame in zip(range(25), container.decode(stream), strict=False)]
            received.update(rate=stream.average_rate, guessed=stream.guessed_rate, times=times)
        finally:
            container.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    live.start()
    try:
        seq = 0
        while listener.is_alive() and seq < 400:  # real time: 12.5 fps
            seq += 1
            picture = np.full((120, 160, 3), seq % 200, np.uint8)
            frame = Frame.from_bgr("cam", seq, T0 + seq / 12.5, seq / 12.5, picture)
            live.tap(frame)
            threading.Event().wait(1 / 12.5)
        listener.join(5)
    finally:
        live.stop()
    assert received, "nothing arrived on the MPEG-TS output"
    assert float(received["rate"]) == pytest.approx(12.5, rel=0.02), received
    times = received["times"]
    steps = np.diff(times)
    assert np.median(steps) == pytest.approx(1 / 12.5, rel=0.02), times  # frame durations from capture times
    assert live.encoders["cam"].frame_rate == pytest.approx(12.5)
