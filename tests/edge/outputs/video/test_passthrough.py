"""H.264 passthrough with real files read by the edge's own reader (PyAV): the source's packets reach the viewers
unchanged, with their frame's boxes, startable at any keyframe by a fresh decoder; sources a browser cannot play
as they are (B-frames, MPEG-4) are refused with the reason and encoded with the boxes burned in instead."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from edge.config.source import SourceConfig
from edge.config.video import VideoConfig
from edge.frame import DataWindow, Frame
from edge.outputs.video.passthrough import H264Passthrough, nal_type, nal_units
from edge.outputs.video.service import LiveVideo
from edge.source.reader import AvReader
from edge.track.tracker import TrackedBox
from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import VIDEO_CLOCK, PtsClock
from smarteye.wire.messages import VideoBox

FPS = 25
SIZE = (160, 120)
FRAMES = 30


def write_video(path: Path, codec: str = "libx264", options: dict[str, str] | None = None, gop: int = 10) -> Path:
    """A moving test picture, a keyframe every `gop` frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if options:
            stream.codec_context.options = options
        for i in range(FRAMES):
            image = np.full((SIZE[1], SIZE[0], 3), 60, np.uint8)
            image[:, (i * 4) % SIZE[0] : (i * 4) % SIZE[0] + 20] = 220
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


NO_B_FRAMES = {"bf": "0", "tune": "zerolatency", "preset": "ultrafast"}


def read_frames(path: Path, tap: Callable[[Frame], object] = lambda _: None) -> list[Frame]:
    """The frames as the source thread reads them, each given to `tap` while its container is open (as live)."""
    reader = AvReader(SourceConfig.model_validate({"name": "cam", "url": str(path)}), DataWindow(8))
    reader.open()
    frames = []
    try:
        for frame in reader.frames("cam", 0):
            frames.append(frame)
            tap(frame)
    finally:
        reader.close()
    return frames


def forward_all(path: Path, max_keyframe_interval_s: float = 4.0) -> tuple[list[Frame], H264Passthrough, list]:
    fanout = PacketFanout("cam")
    reader = fanout.subscribe_thread(maxsize=1000)
    passthrough = H264Passthrough("cam", fanout, PtsClock(), max_keyframe_interval_s)
    frames = read_frames(path, lambda frame: passthrough.active and passthrough.forward(frame, b"[]"))
    packets = []
    while (packet := reader.get(0)) is not None:
        packets.append(packet)
    return frames, passthrough, packets


def decode(packets: list) -> list[av.VideoFrame]:
    """With a decoder that never saw the container's extradata: what a browser joining at a keyframe has."""
    decoder = av.CodecContext.create("h264", "r")
    pictures = []
    for packet in [*packets, None]:
        pictures += decoder.decode(None if packet is None else av.Packet(packet.data))
    return pictures


@pytest.mark.parametrize("container", ["ts", "mp4"])
def test_the_sources_h264_is_forwarded_frame_for_frame_and_decodes_from_any_keyframe(
    tmp_path: Path, container: str
) -> None:
    """MPEG-TS carries Annex B (forwarded byte for byte); MP4 carries avcC (converted by FFmpeg's filter, its
    SPS/PPS put before each keyframe). Either way every frame goes out, keyframes where the source has them."""
    frames, passthrough, packets = forward_all(write_video(tmp_path / f"clip.{container}", options=NO_B_FRAMES))
    assert len(frames) == FRAMES and all(frame.source_packet is not None for frame in frames)
    sources = [bytes(frame.source_packet) for frame in frames]
    assert passthrough.refused is None and passthrough.frames_forwarded == FRAMES
    assert len(packets) == FRAMES
    assert [i for i, p in enumerate(packets) if p.keyframe] == [0, 10, 20]
    if container == "ts":
        assert [p.data for p in packets[1:10]] == sources[1:10]  # unchanged
    for start in (0, 10, 20):  # a viewer may join at any keyframe
        assert {nal_type(u) for u in nal_units(packets[start].data)} >= {5, 7, 8}  # IDR with its SPS and PPS
        assert len(decode(packets[start:])) == FRAMES - start
    assert [p.capture_time for p in packets] == [f.capture_time for f in frames]
    epoch = packets[0].capture_time
    assert [p.pts for p in packets] == [round((p.capture_time - epoch) * VIDEO_CLOCK) for p in packets]
    assert (packets[0].width, packets[0].height) == SIZE


@pytest.mark.parametrize(
    ("codec", "options", "reason"),
    [
        ("libx264", {"bf": "2", "preset": "medium"}, "B-frames|not decoded one per packet"),
        ("mpeg4", None, "sends mpeg4, not H.264"),
    ],
    ids=["b-frames", "mpeg4"],
)
def test_sources_a_browser_cannot_play_as_they_are_are_refused_with_the_reason(
    tmp_path: Path, codec: str, options: dict[str, str] | None, reason: str
) -> None:
    _, passthrough, _ = forward_all(write_video(tmp_path / "clip.mkv", codec, options))
    assert passthrough.refused is not None and __import__("re").search(reason, passthrough.refused)
    assert not passthrough.active
    passthrough.reset()  # the source reconnected: it is tried again
    assert passthrough.active


@pytest.fixture
def page_video() -> Iterator[LiveVideo]:
    config = VideoConfig.model_validate(
        {"whep": {"enabled": False}, "annotation": {"overlay": False}, "live": {"boxes": "page"}}
    )
    live = LiveVideo(config, "node1", ["cam"], {0: "person"})
    live.start()
    yield live
    live.stop()


def test_page_mode_forwards_with_each_frames_moved_boxes_and_burns_in_only_for_the_udp_output(
    tmp_path: Path, page_video: LiveVideo
) -> None:
    """Viewers get the source's packets with the boxes of the latest detection moved to each frame's time (what
    the page draws); the encoder runs only for the burned-in consumers (the UDP MPEG-TS output's fan-out)."""
    viewers = page_video.fanouts["cam"].subscribe_thread(maxsize=1000)
    burned = page_video.burned["cam"].subscribe_thread(maxsize=1000)

    def tap(frame: Frame) -> None:
        page_video.tap(frame)  # as the source thread does; detection finishes frame 0 as frame 2 is read
        if frame.seq == 3:
            frame.tracks = [TrackedBox(7, 14.0, 20.0, 54.0, 100.0, 0.9, 0)]  # 4 px further, 2 frames later
            page_video.consume(frame)
        if frame.seq == 1:
            frame.tracks = [TrackedBox(7, 10.0, 20.0, 50.0, 100.0, 0.9, 0)]
            page_video.consume(frame)

    frames = read_frames(write_video(tmp_path / "clip.ts", options=NO_B_FRAMES), tap)
    packets = [viewers.get(5) for _ in frames]
    assert all(p is not None for p in packets)
    assert [p.data for p in packets[1:10]] == [bytes(f.source_packet) for f in frames[1:10]]
    boxes = [[VideoBox.model_validate(b) for b in json.loads(p.boxes)] for p in packets]
    last = boxes[-1][0]
    first, second = frames[0].capture_time, frames[2].capture_time  # the two detections (seq 1 and 3)
    velocity = 4.0 / (second - first)  # px per second of capture time
    seconds = min(1.0, frames[-1].capture_time - second)  # moved at most 1 s past its detection (motion.py)
    assert last.track_id == 7 and last.colour == "#ff3838" and last.label == "person #7 0.90"
    assert last.x1 == pytest.approx(14.0 + velocity * seconds, abs=0.2)  # moved to this frame's capture time
    drawn = {row["capture_time"]: row for row in page_video.drawn["cam"]}
    assert drawn[frames[-1].capture_time]["boxes"][0]["x1"] == pytest.approx(last.x1, abs=0.1)
    state = page_video.describe("cam")
    assert state["boxes"] == "page" and state["frames_forwarded"] == FRAMES
    encoded = [burned.get(5) for _ in range(3)]  # the burned-in stream still runs for its own consumers
    assert all(p is not None and p.boxes is None for p in encoded)
    assert page_video.encoders["cam"].frames_encoded >= 3


def test_page_mode_falls_back_to_burning_in_for_a_source_it_cannot_forward(
    tmp_path: Path, page_video: LiveVideo
) -> None:
    viewers = page_video.fanouts["cam"].subscribe_thread(maxsize=1000)
    read_frames(write_video(tmp_path / "clip.avi", "mpeg4"), page_video.tap)
    packets = [viewers.get(5) for _ in range(FRAMES - 3)]  # the encoder starts once the rate is known
    assert all(p is not None and p.boxes is None for p in packets)
    assert decode(packets)  # H.264 from the encoder, boxes burned in
    state = page_video.describe("cam")
    assert state["boxes"] == "burn_in" and "mpeg4" in str(state["passthrough_refused"])


def test_a_stream_set_to_burn_in_has_no_passthrough_and_one_fan_out() -> None:
    config = VideoConfig.model_validate({"whep": {"enabled": False}, "live": {"streams": {"qgc": "burn_in"}}})
    live = LiveVideo(config, "node1", ["cam", "qgc"], {0: "person"})
    assert live.passthrough["qgc"] is None and live.burned["qgc"] is live.fanouts["qgc"]
    assert live.passthrough["cam"] is not None and live.burned["cam"] is not live.fanouts["cam"]
    assert live.describe("qgc")["boxes"] == "burn_in"


def test_a_source_whose_keyframes_are_too_far_apart_is_refused_so_joining_viewers_get_one_at_once(
    tmp_path: Path,
) -> None:
    """A forwarded camera cannot make a keyframe when a viewer joins: with one keyframe in 1.2 s of video and
    0.5 s allowed, forwarding stops at the first frame more than 0.5 s after it (source time, not read time: a
    file is read faster than real time), naming the setting; the encoder (keyframe on every join) takes over.
    Keyframes every 0.4 s are forwarded throughout."""
    _, passthrough, packets = forward_all(write_video(tmp_path / "long.ts", options=NO_B_FRAMES, gop=FRAMES), 0.5)
    assert passthrough.refused is not None and "video.live.max_keyframe_interval_s" in passthrough.refused
    assert len(packets) == passthrough.frames_forwarded == round(0.5 * FPS) + 1  # frames 0..12, at 0.00..0.48 s
    assert packets[0].keyframe and not any(p.keyframe for p in packets[1:])
    _, passthrough, packets = forward_all(write_video(tmp_path / "short.ts", options=NO_B_FRAMES), 0.5)
    assert passthrough.refused is None and len(packets) == FRAMES
    assert VideoConfig().live.max_keyframe_interval_s == 4.0
