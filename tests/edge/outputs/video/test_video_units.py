"""Live video, piece by piece: the uplink packet format, the fan-out's queues and status, the annotator,
the H.264 encoder, the video configuration, the WHEP endpoint and the station's uplink relay.

Fast and self-contained (synthetic frames, real libx264/aiortc, in-process apps): the end-to-end
paths with real cameras and browsers are in test_live_video.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import smarteye.media.fanout as fanout_module
from edge.config.node import parse_config
from edge.config.video import AnnotationConfig, EncoderConfig, UplinkConfig, VideoConfig
from edge.outputs.video.annotate import PALETTE, Annotator
from edge.outputs.video.encoder import StreamEncoder
from edge.track.tracker import TrackedBox
from ground_station.api.app import create_app
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.auth.accounts import Accounts
from ground_station.auth.roles import Role
from ground_station.snapshots import Snapshots
from ground_station.store.store import Store
from ground_station.video.relay import VideoRelay
from smarteye.config.loading import ConfigError
from smarteye.media.fanout import STALE_AFTER_S, PacketFanout
from smarteye.media.packet import _HEADER, TIME_BASE, VIDEO_CLOCK, EncodedPacket, PacketFormatError
from smarteye.media.webrtc import WhepServer
from smarteye.media.whep_http import MAX_OFFER_BYTES, add_whep_routes
from smarteye.wire.messages import VideoState, VideoStreamState

SDP = {"Content-Type": "application/sdp"}
RED = (0, 0, 255)  # BGR


# -- helpers ---------------------------------------------------------------------------------------
def _picture(width: int, height: int, step: int = 0) -> np.ndarray:
    """Blue left→right and green top→bottom gradients (no red anywhere) with a red square moving right."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.float32)[None, :].astype(np.uint8)
    image[:, :, 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None].astype(np.uint8)
    x = 8 + 6 * step
    image[16:48, x : x + 32] = RED
    return image


def _packet(
    keyframe: bool = False, pts: int = 0, stream: str = "cam", data: bytes = b"\x00\x00\x00\x01\x65"
) -> EncodedPacket:
    """A packet whose payload does not matter (queueing and wire format only)."""
    return EncodedPacket(stream, data, pts, keyframe, 1_700_000_000.25, 640, 480)


class _Encoding:
    """A started StreamEncoder wired to its fan-out, with a thread reader that sees every packet."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.fanout = PacketFanout("cam")
        self.encoder = StreamEncoder("cam", config or EncoderConfig(), self.fanout)
        self.fanout.keyframe_requester = self.encoder.request_keyframe  # as LiveVideo wires it
        self.reader = self.fanout.subscribe_thread(maxsize=1000)

    def encode(self, image: np.ndarray, capture_time: float) -> EncodedPacket:
        """One frame in, its packet out (waiting for it, so latest-wins never replaces a frame)."""
        self.encoder.submit(image, capture_time)
        packet = self.reader.get(5)
        assert packet is not None, "the encoder produced no packet"
        return packet


@pytest.fixture
def encoding() -> Iterator[_Encoding]:
    enc = _Encoding(EncoderConfig(keyframe_interval_s=30))
    enc.encoder.start()
    yield enc
    enc.encoder.stop()


def _decode(packets: list[EncodedPacket]) -> list[np.ndarray]:
    """Decode with a fresh FFmpeg H.264 decoder, as a viewer joining at the first packet would."""
    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for packet in [*packets, None]:
        for frame in decoder.decode(None if packet is None else av.Packet(packet.data)):
            frames.append(frame.to_ndarray(format="bgr24"))
    return frames


@pytest.fixture(scope="module")
def h264_packets() -> list[EncodedPacket]:
    """Six real 160x120 packets (a keyframe, then P-frames), shared by the wire and relay tests."""
    enc = _Encoding(EncoderConfig(keyframe_interval_s=30))
    enc.encoder.start()
    try:
        return [enc.encode(_picture(160, 120, i), 500.0 + i * 0.125) for i in range(6)]
    finally:
        enc.encoder.stop()


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll briefly for something another thread or loop does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- packet ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("keyframe", [True, False])
def test_packet_round_trips_through_its_wire_form(keyframe: bool) -> None:
    """Every field the station relies on survives the uplink, and the name length counts UTF-8 bytes."""
    packet = EncodedPacket(
        "kamera-ü", b"\x00\x00\x00\x01\x67abc", 123_456_789_012, keyframe, 1_700_000_000.125, 1920, 1080
    )
    wire = packet.to_wire()
    assert len(wire) == _HEADER.size + len("kamera-ü".encode()) + len(packet.data)
    back = EncodedPacket.from_wire(wire)
    assert back == packet
    assert back.keyframe is keyframe


def _wire(
    version: int = 1, flags: int = 1, width: int = 64, height: int = 48, pts: int = 0, name: bytes = b"cam",
    name_length: int | None = None, data: bytes = b"x",
) -> bytes:  # fmt: skip
    length = len(name) if name_length is None else name_length
    return _HEADER.pack(version, flags, width, height, pts, 0.0, length) + name + data


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "0 bytes is shorter than its header"),
        (_wire()[: _HEADER.size - 1], "shorter than its header"),
        (_wire(version=2), "version 2 is not supported"),
        (_wire(name=b""), "no stream name"),
        (_wire(data=b""), "no picture data"),
        (_wire(name=b"c\xffm"), "not UTF-8"),
        (_wire(width=0), "impossible size 0x48"),
        (_wire(height=0), "impossible size 64x0"),
        (_wire(pts=-1), "pts -1"),
        (_wire(name_length=200), "no stream name or no picture data"),  # the name runs past the end
    ],
    ids=["empty", "short", "version", "no-name", "no-data", "name-not-utf8", "width-0", "height-0", "pts<0",
         "name-past-end"],
)  # fmt: skip
def test_malformed_wire_messages_raise_packet_format_error_naming_the_problem(message: bytes, problem: str) -> None:
    """The relay counts and skips these; the message must say what was wrong, never a struct/Unicode error."""
    with pytest.raises(PacketFormatError, match=problem):
        EncodedPacket.from_wire(message)


def test_av_packet_is_made_once_with_the_packet_timing() -> None:
    """All WebRTC senders share one av.Packet: same object, 90 kHz pts/dts, keyframe flag, same bytes."""
    packet = _packet(keyframe=True, pts=90_000)
    first = packet.av_packet()
    assert packet.av_packet() is first
    assert (first.pts, first.dts, first.time_base) == (90_000, 90_000, TIME_BASE)
    assert first.is_keyframe and bytes(first) == packet.data
    assert Fraction(1, VIDEO_CLOCK) == TIME_BASE


# -- fan-out ---------------------------------------------------------------------------------------
def test_consumer_starts_at_a_keyframe_and_joining_asks_for_one() -> None:
    """A newcomer must never be handed a P-frame it cannot decode, and should not wait a whole GOP."""
    requests = []
    fanout = PacketFanout("cam", lambda: requests.append(1))
    reader = fanout.subscribe_thread()
    assert len(requests) == 1 and fanout.consumers == 1
    for packet in (_packet(pts=0), _packet(pts=1), _packet(keyframe=True, pts=2), _packet(pts=3)):
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
    packets = [_packet(keyframe=True, pts=0), *(_packet(pts=i) for i in range(1, 6)), _packet(keyframe=True, pts=6)]
    packets.append(_packet(pts=7))
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
    fanout.publish(_packet(keyframe=True))
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
            fanout.publish(_packet(keyframe=pts == 0, pts=pts))

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
        producer = threading.Timer(0.02, lambda: [fanout.publish(_packet(keyframe=p == 0, pts=p)) for p in range(5)])
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
        fanout.publish(_packet(keyframe=i == 0, pts=i))
    status = fanout.status()
    assert (status.state, status.reason, status.width, status.height) == (VideoState.LIVE, None, 640, 480)
    assert (status.fps, status.packets, status.consumers) == (10.0, 11, 1)

    now[0] += STALE_AFTER_S + 1.0  # no packet for 3 s
    status = fanout.status()
    assert (status.state, status.reason, status.fps) == (VideoState.DOWN, "no video for 3 s", 0.0)

    fanout.publish(_packet(keyframe=True, pts=20))
    assert fanout.status().state is VideoState.LIVE
    fanout.set_down("camera unplugged")
    status = fanout.status()
    assert (status.state, status.reason) == (VideoState.DOWN, "camera unplugged")
    fanout.publish(_packet(pts=21))  # the source came back
    assert (fanout.status().state, fanout.status().reason) == (VideoState.LIVE, None)


# -- annotator -------------------------------------------------------------------------------------
NAMES = {0: "person", 2: "car"}


def _box(class_id: int, x1: float = 40, y1: float = 60, x2: float = 120, y2: float = 140) -> TrackedBox:
    return TrackedBox(track_id=7, x1=x1, y1=y1, x2=x2, y2=y2, score=0.87, class_id=class_id)


def _blank() -> np.ndarray:
    return np.zeros((240, 320, 3), np.uint8)


def test_annotator_draws_the_box_in_its_class_colour_in_place() -> None:
    """The frame itself is annotated (no copy); the outline is at the box edge in the class's palette colour."""
    image = _blank()
    annotator = Annotator(AnnotationConfig(labels=False), NAMES)
    assert annotator.draw(image, [_box(2)]) is None  # type: ignore[func-returns-value]
    assert tuple(int(v) for v in image[100, 40]) == PALETTE[2]  # left edge, mid-height
    assert tuple(int(v) for v in image[140, 80]) == PALETTE[2]  # bottom edge
    assert not image[100, 80].any() and not image[5:50, :].any()  # inside and above untouched (no label)


def test_annotator_disabled_or_filtered_out_leaves_the_picture_alone() -> None:
    """`enabled: false` gives the plain picture; `classes` filters by name (a car is not drawn for ['person'])."""
    image = _blank()
    Annotator(AnnotationConfig(enabled=False), NAMES).draw(image, [_box(0), _box(2)], "cam 10 fps")
    assert not image.any()

    only_people = Annotator(AnnotationConfig(classes=["person"], overlay=False), NAMES)
    only_people.draw(image, [_box(2)])
    assert not image.any()
    only_people.draw(image, [_box(0)])
    assert tuple(int(v) for v in image[100, 40]) == PALETTE[0]


def test_annotator_labels_and_overlay_follow_their_switches() -> None:
    """Labels sit above the box (below its top when there is no room); the overlay only when on and given."""
    labelled = _blank()
    Annotator(AnnotationConfig(overlay=False), NAMES).draw(labelled, [_box(0)], "cam 10 fps")
    assert labelled[30:60, 40:120].any()  # the label above the box
    assert not labelled[0:20, 0:20].any()  # no overlay

    at_top = _blank()
    Annotator(AnnotationConfig(overlay=False), NAMES).draw(at_top, [_box(0, y1=0)])
    label_row = at_top[8, 45:100]
    assert (label_row == PALETTE[0]).all(axis=1).any()  # the label's background, inside the frame

    overlaid = _blank()
    annotator = Annotator(AnnotationConfig(), NAMES)
    annotator.draw(overlaid, [], None)
    assert not overlaid.any()
    annotator.draw(overlaid, [], "cam 10 fps 80 ms")
    assert overlaid[0:20, 0:60].any() and not overlaid[60:, :].any()


# -- encoder ---------------------------------------------------------------------------------------
def test_encoder_packets_decode_to_the_source_picture_with_pts_from_capture_times(encoding: _Encoding) -> None:
    """The first packet is a keyframe, pts count 90 kHz from the first capture time, and the pictures survive."""
    captures = [1000.0, 1000.125, 1000.25, 1000.5]
    packets = [encoding.encode(_picture(160, 120, i), t) for i, t in enumerate(captures)]
    assert [p.pts for p in packets] == [0, 11_250, 22_500, 45_000]
    assert [p.keyframe for p in packets] == [True, False, False, False]
    assert [p.capture_time for p in packets] == captures
    assert all((p.stream, p.width, p.height) == ("cam", 160, 120) for p in packets)
    assert packets[0].data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))  # Annex B

    frames = _decode(packets)
    assert len(frames) == 4
    for step, frame in enumerate(frames):
        assert frame.shape == (120, 160, 3)
        assert frame.std() > 30  # not flat grey mush
        x = 8 + 6 * step
        assert frame[20:44, x + 4 : x + 28, 2].mean() > 180  # the red square, where it was drawn
        assert frame[70:, :, 2].mean() < 40  # and no red elsewhere
    assert encoding.encoder.frames_encoded == 4


def test_encoder_pts_stay_strictly_increasing_when_capture_times_repeat_or_go_back(encoding: _Encoding) -> None:
    """Clock jumps on the source must not produce duplicate or backwards pts (RTP and MPEG-TS need order)."""
    times = [50.0, 50.5, 50.5, 50.25, 51.0]
    pts = [encoding.encode(_picture(64, 48, i), t).pts for i, t in enumerate(times)]
    assert pts == [0, 45_000, 45_001, 45_002, 90_000]


def test_encoder_keyframes_periodic_on_request_and_after_a_gap() -> None:
    """Keyframes come every keyframe_interval_s of capture time, when asked, and after a source pause."""
    periodic = _Encoding(EncoderConfig(keyframe_interval_s=1.0))
    periodic.encoder.start()
    try:
        flags = [periodic.encode(_picture(64, 48, i), 10.0 + i * 0.25).keyframe for i in range(9)]
    finally:
        periodic.encoder.stop()
    assert flags == [True, False, False, False, True, False, False, False, True]

    asked = _Encoding(EncoderConfig(keyframe_interval_s=30))
    asked.encoder.start()
    try:
        flags = [asked.encode(_picture(64, 48, 0), 10.0).keyframe, asked.encode(_picture(64, 48, 1), 10.25).keyframe]
        asked.fanout.request_keyframe()  # a viewer joined or lost packets
        flags.append(asked.encode(_picture(64, 48, 2), 10.5).keyframe)
        flags.append(asked.encode(_picture(64, 48, 3), 10.75).keyframe)
        flags.append(asked.encode(_picture(64, 48, 4), 12.0).keyframe)  # 1.25 s without frames
        flags.append(asked.encode(_picture(64, 48, 5), 12.25).keyframe)
    finally:
        asked.encoder.stop()
    assert flags == [True, False, True, False, True, False]


def test_encoder_downscales_to_max_width_and_evens_odd_sizes() -> None:
    """4:2:0 needs even sizes; wide sources are scaled down (aspect kept) before encoding."""
    enc = _Encoding(EncoderConfig(max_width=320))
    enc.encoder.start()
    try:
        wide = enc.encode(_picture(640, 360), 1.0)
        odd = enc.encode(_picture(161, 121), 1.1)
    finally:
        enc.encoder.stop()
    assert (wide.width, wide.height) == (320, 180)
    assert (odd.width, odd.height) == (160, 120)
    assert [f.shape for f in _decode([wide])] == [(180, 320, 3)]
    assert [f.shape for f in _decode([odd])] == [(120, 160, 3)]


def test_encoder_size_change_reopens_the_codec_with_a_keyframe(encoding: _Encoding) -> None:
    """A source that changes resolution mid-stream restarts cleanly: keyframe, new size, pts still rising."""
    first = [encoding.encode(_picture(160, 120, i), 7.0 + i * 0.125) for i in range(2)]
    second = [encoding.encode(_picture(96, 64, i), 7.25 + i * 0.125) for i in range(2)]
    assert [p.keyframe for p in first + second] == [True, False, True, False]
    assert [(p.width, p.height) for p in second] == [(96, 64)] * 2
    pts = [p.pts for p in first + second]
    assert pts == sorted(set(pts))
    assert [f.shape for f in _decode(second)] == [(64, 96, 3)] * 2


def test_encoder_latest_frame_wins() -> None:
    """Frames that arrive while the encoder is busy are replaced, so it never falls behind detection."""
    enc = _Encoding()
    for i in range(3):
        enc.encoder.submit(_picture(64, 48, i), 20.0 + i)
    enc.encoder.start()
    try:
        packet = enc.reader.get(5)
        assert packet is not None and packet.capture_time == 22.0
        assert enc.reader.get(0.1) is None
    finally:
        enc.encoder.stop()
    assert (enc.encoder.frames_in, enc.encoder.frames_replaced, enc.encoder.frames_encoded) == (3, 2, 1)


def test_encoder_survives_a_frame_it_cannot_convert(encoding: _Encoding) -> None:
    """One bad frame may be lost, but the next good one must still be encoded."""
    encoding.encode(_picture(64, 48), 1.0)
    encoding.encoder.submit(np.zeros((48, 64), np.uint8), 1.1)  # grey, not BGR
    _wait_for(lambda: encoding.encoder._slot is None)  # taken by the encoder (not replaced by the next one)
    encoding.encoder.submit(_picture(64, 48, 1), 1.2)
    packet = encoding.reader.get(1)
    assert packet is not None and packet.capture_time == 1.2


# -- configuration ---------------------------------------------------------------------------------
def _config(video: dict[str, Any]) -> Any:
    return parse_config({"sources": [{"name": "cam", "url": "x.mp4"}], "video": video}, "cfg")


@pytest.mark.parametrize(
    ("url", "normalised"),
    [("udp://239.0.0.1:5600", "udp://239.0.0.1:5600"), ("10.0.0.5:5600", "udp://10.0.0.5:5600")],
)
def test_udp_output_urls_are_normalised(url: str, normalised: str) -> None:
    """A bare host:port is taken as UDP (what QGroundControl users type)."""
    assert _config({"udp_outputs": {"cam": url}}).video.udp_outputs == {"cam": normalised}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("rtp://10.0.0.5:5600", "must be udp://host:port (got scheme 'rtp')"),
        ("udp://10.0.0.5", "with a port"),
        ("udp://10.0.0.5:0", "with a port"),
        ("udp://10.0.0.5:99999", "with a port"),
        ("udp://:5600", "with a port"),
    ],
)
def test_bad_udp_output_urls_are_config_errors_naming_the_field(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config({"udp_outputs": {"cam": url}})
    [line] = str(caught.value).splitlines()
    assert line.startswith("cfg: video.udp_outputs: udp_outputs.cam ") and problem in line, line


def test_udp_outputs_must_name_existing_sources() -> None:
    with pytest.raises(ConfigError, match=r"^cfg: \(top level\): video.udp_outputs names unknown streams: a, b$"):
        _config({"udp_outputs": {"b": "udp://h:1", "cam": "udp://h:2", "a": "udp://h:3"}})


def test_uplink_url_and_token_problems_are_one_line_each_and_the_token_is_not_echoed() -> None:
    """The operator sees every problem at once; a (short) secret never lands in logs."""
    with pytest.raises(ConfigError) as caught:
        _config({"uplink": {"url": "ftp://station", "token": "hunter2"}})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[0] == "cfg: video.uplink.url: uplink url must be http(s)://host[:port] (got 'ftp://station')"
    assert lines[1].startswith("cfg: video.uplink.token: ") and "16 characters" in lines[1]
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"video.uplink.url: .*got 'http://'"):
        _config({"uplink": {"url": "http://", "token": "x" * 16}})


@pytest.mark.parametrize(
    ("url", "websocket"),
    [
        ("https://gs.example:8443/", "wss://gs.example:8443/api/video/uplink"),
        ("http://10.0.0.1:8080", "ws://10.0.0.1:8080/api/video/uplink"),
    ],
)
def test_uplink_websocket_url_follows_the_scheme(url: str, websocket: str) -> None:
    uplink = UplinkConfig(url=url, token="t" * 16)
    assert uplink.url == url.rstrip("/")
    assert uplink.websocket_url == websocket


def test_udp_output_ipv6_address_keeps_its_brackets() -> None:
    url = VideoConfig(udp_outputs={"cam": "udp://[::1]:5600"}).udp_outputs["cam"]
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("::1", 5600)


# -- WHEP ------------------------------------------------------------------------------------------
async def _client_offer() -> tuple[RTCPeerConnection, str]:
    """A real browser-like WHEP offer: receive-only video plus the `smarteye` data channel."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("smarteye")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _whep_app(server: WhepServer, fanouts: dict[str, PacketFanout]) -> httpx.AsyncClient:
    app = FastAPI()

    def resolve(params: dict[str, Any]) -> tuple[PacketFanout, str] | None:
        fanout = fanouts.get(params.get("stream", ""))
        return (fanout, "edge-1") if fanout is not None else None

    add_whep_routes(app, "/whep/{stream}", server, resolve)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # an app error is a 500, as in production
    return httpx.AsyncClient(transport=transport, base_url="http://edge")


def test_whep_refuses_bad_offers_with_the_right_status_and_leaks_nothing() -> None:
    """Wrong type 415, too big 413, unknown stream 404, no video / garbage SDP 400 with a reason."""
    fanout = PacketFanout("cam")
    server = WhepServer()

    async def main() -> None:
        async with _whep_app(server, {"cam": fanout}) as client:
            response = await client.post(
                "/whep/cam", content="v=0\r\nm=video 9", headers={"Content-Type": "text/plain"}
            )
            assert response.status_code == 415
            response = await client.post("/whep/cam", content="v=0\r\nm=video 9")
            assert response.status_code == 415
            response = await client.post("/whep/cam", content="m=video " + "a" * MAX_OFFER_BYTES, headers=SDP)
            assert response.status_code == 413
            response = await client.post("/whep/nope", content="v=0\r\nm=video 9", headers=SDP)
            assert response.status_code == 404
            audio_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
            response = await client.post("/whep/cam", content=audio_only, headers=SDP)
            assert response.status_code == 400 and "no video section" in response.json()["detail"]
            for garbage in ("hello m=video", "v=0\r\nm=video\r\n", "m=video \xff\xfe"):
                response = await client.post("/whep/cam", content=garbage.encode(), headers=SDP)
                assert response.status_code == 400, (garbage, response.text)
                assert response.json()["detail"].startswith("cannot answer this SDP offer")
            response = await client.patch("/whep/cam/whatever")
            assert response.status_code == 405 and response.headers["allow"] == "DELETE"
        await server.close_all()

    asyncio.run(main())
    assert server.sessions == {} and fanout.consumers == 0


def test_whep_session_lifecycle_h264_answer_and_limits() -> None:
    """201 with a Location and an H.264-only sendonly answer; DELETE ends it once; the session cap answers 503."""
    cam, other = PacketFanout("cam"), PacketFanout("other")
    server = WhepServer(max_sessions=1)

    async def main() -> None:
        pc, offer = await _client_offer()
        pc2, offer2 = await _client_offer()
        try:
            async with _whep_app(server, {"cam": cam, "other": other}) as client:
                response = await client.post(
                    "/whep/cam", content=offer, headers={"Content-Type": "application/sdp; x=1"}
                )
                assert response.status_code == 201, response.text
                assert response.headers["content-type"] == "application/sdp"
                location = response.headers["location"]
                assert location.startswith("/whep/cam/") and len(location) > len("/whep/cam/")
                answer = response.text
                codecs = {
                    line.split(" ")[1].split("/")[0] for line in answer.splitlines() if line.startswith("a=rtpmap:")
                }
                assert "H264" in codecs and codecs <= {"H264", "rtx"}, codecs
                assert "a=sendonly" in answer and "m=application" in answer
                assert cam.consumers == 1 and server.viewers(cam) == 1

                response = await client.post("/whep/other", content=offer2, headers=SDP)
                assert response.status_code == 503

                session_id = location.rsplit("/", 1)[1]
                assert (await client.delete(f"/whep/other/{session_id}")).status_code == 404  # not that stream's
                assert (await client.delete(location)).status_code == 200
                assert (await client.delete(location)).status_code == 404
                assert cam.consumers == 0 and server.sessions == {}
        finally:
            await server.close_all()
            await pc.close()
            await pc2.close()

    asyncio.run(main())


def test_whep_offer_without_dtls_setup_is_a_400_and_leaks_no_consumer() -> None:
    fanout = PacketFanout("cam")
    server = WhepServer()
    result: dict[str, Any] = {}

    async def main() -> None:
        pc, offer = await _client_offer()
        no_setup = "\r\n".join(line for line in offer.split("\r\n") if not line.startswith("a=setup"))
        try:
            async with _whep_app(server, {"cam": fanout}) as client:
                response = await client.post("/whep/cam", content=no_setup, headers=SDP)
                result["status"], result["consumers"] = response.status_code, fanout.consumers
        finally:
            await server.close_all()
            await pc.close()

    asyncio.run(main())
    assert result == {"status": 400, "consumers": 0}


# -- ground station: uplink relay ------------------------------------------------------------------
class _Station(SimpleNamespace):
    app: FastAPI
    relay: VideoRelay
    accounts: Accounts
    edge_token: str
    viewer_token: str


@pytest.fixture
def station(tmp_path: Path) -> Iterator[_Station]:
    store = Store(f"sqlite:///{tmp_path / 'gs.sqlite'}")
    accounts = Accounts(store.engine)
    relay = VideoRelay()
    app = create_app(
        store, accounts, Snapshots(store.engine), LiveHub(), TelemetryCache(), secure_cookies=False, relay=relay,
        whep=WhepServer(),
    )  # fmt: skip
    _, edge_token = accounts.create_token("e1", Role.EDGE, "test")
    _, viewer_token = accounts.create_token("wall", Role.VIEWER, "test")
    yield _Station(app=app, relay=relay, accounts=accounts, edge_token=edge_token, viewer_token=viewer_token)
    store.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
    station: _Station, who: str | None, node: str, code: int
) -> None:
    """Only an edge token may push video, and the node name must be usable in URLs and topics."""
    headers = {} if who is None else _bearer(station.edge_token if who == "edge" else station.viewer_token)
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        TestClient(station.app).websocket_connect(f"/api/video/uplink?node={node}", headers=headers),
    ):
        pass
    assert caught.value.code == code
    assert station.relay.stats.uplinks == 0


def test_uplink_refuses_a_node_name_with_a_trailing_newline(station: _Station) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        TestClient(station.app).websocket_connect("/api/video/uplink?node=e1%0A", headers=_bearer(station.edge_token)),
    ):
        pass
    assert caught.value.code == 4400


def test_uplink_relays_good_packets_skips_malformed_ones_and_forwards_keyframe_requests(
    station: _Station, h264_packets: list[EncodedPacket]
) -> None:
    """Station viewers get exactly the edge's packets (decodable), bad messages are counted, never fatal."""
    relay = station.relay
    bad_messages = [
        b"short",
        _wire(version=9),
        EncodedPacket("bad name", b"x", 0, True, 0.0, 2, 2).to_wire(),  # refused stream name
    ]
    with TestClient(station.app).websocket_connect(
        "/api/video/uplink?node=e1", headers=_bearer(station.edge_token)
    ) as ws:
        live = VideoStreamState(node="e1", stream="cam", state=VideoState.LIVE, time=time.time())
        ws.send_text(live.model_dump_json())  # the station learns the stream before its first packet
        _wait_for(lambda: relay.fanout("e1", "cam") is not None)
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
        _wait_for(lambda: relay.stats.bad_messages == len(bad_messages) + 1)
        assert received == h264_packets
        assert relay.stats.packets == len(h264_packets)
        assert [row["stream"] for row in relay.streams()] == ["cam"]  # 'bad name' got no fan-out
        row = relay.streams()[0]
        assert (row["state"], row["width"], row["height"], row["viewers"], row["uplink"]) == ("live", 160, 120, 1, True)
        assert row["whep"] == "/api/whep/e1/cam"

        down = VideoStreamState(node="e1", stream="cam", state=VideoState.DOWN, reason="camera lost", time=time.time())
        ws.send_text(down.model_dump_json())
        _wait_for(lambda: fanout.status().state is VideoState.DOWN)
        assert fanout.status().reason == "camera lost"

    frames = _decode(received)  # type: ignore[arg-type]
    assert [f.shape for f in frames] == [(120, 160, 3)] * len(h264_packets)
    assert all(f.std() > 30 for f in frames)
    _wait_for(lambda: not relay.streams()[0]["uplink"])
    assert fanout.status().reason == "the edge node's video uplink is disconnected"
    reader.close()


def test_video_streams_and_station_whep_need_a_reader(station: _Station) -> None:
    """The stream list is for viewers: anonymous 401, an edge token (uplink only) 403; WHEP likewise."""
    client = TestClient(station.app)
    assert client.get("/api/video/streams").status_code == 401
    assert client.get("/api/video/streams", headers=_bearer(station.edge_token)).status_code == 403
    response = client.get("/api/video/streams", headers=_bearer(station.viewer_token))
    assert response.status_code == 200 and response.json() == []
    offer = "v=0\r\nm=video 9"
    assert client.post("/api/whep/e1/cam", content=offer, headers=SDP).status_code == 401
    response = client.post("/api/whep/e1/cam", content=offer, headers={**SDP, **_bearer(station.viewer_token)})
    assert response.status_code == 404


# ------------------------------------------------------------------------------ review follow-ups
def test_a_viewer_starts_at_the_newest_keyframe_not_at_what_queued_during_set_up() -> None:
    """Packets that piled up during ICE/DTLS are skipped up to the last keyframe; with none, it waits for one."""
    requests: list[int] = []
    fanout = PacketFanout("cam", lambda: requests.append(1))
    reader = fanout.subscribe_thread(maxsize=100)
    for pts, key in enumerate((True, False, False, True, False)):
        fanout.publish(_packet(keyframe=key, pts=pts))
    reader.queue.skip_to_latest_keyframe()
    assert [reader.get(0).pts for _ in range(2)] == [3, 4]  # type: ignore[union-attr]
    fanout.publish(_packet(pts=5))
    requests.clear()
    reader.queue.skip_to_latest_keyframe()  # only a P-frame queued: drop it, wait for (and ask) a keyframe
    assert reader.get(0) is None and requests == [1]
    fanout.publish(_packet(pts=6))
    fanout.publish(_packet(keyframe=True, pts=7))
    assert reader.get(0).pts == 7  # type: ignore[union-attr]


def test_relayed_timestamps_keep_rising_when_the_edge_restarts() -> None:
    """A restarted edge counts pts from 0 again; the station's viewers must still see rising timestamps."""
    from ground_station.video.relay import _PtsRebase

    rebase = _PtsRebase()
    first = [rebase(_packet(pts=p)).pts for p in (0, 9000, 18000)]
    after_restart = [rebase(_packet(pts=p)).pts for p in (0, 9000)]
    assert first == [0, 9000, 18000]
    assert after_restart == [21000, 30000]
    same = _packet(pts=40000)
    assert rebase(same).pts == 40000 + 21000


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
        pc, offer = await _client_offer()
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
