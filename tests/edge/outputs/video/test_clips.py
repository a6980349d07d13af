"""Alert clips from real H.264: the project's own StreamEncoder feeds a PacketFanout, the ClipRecorder consumes it
like any other output, and the MP4s it makes are decoded back with PyAV (FFmpeg's MP4 demuxer and H.264 decoder).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
import pytest

from edge.config.video import EncoderConfig, VideoConfig
from edge.outputs.video.clips import ClipError, ClipLimits, ClipRecorder, PacketRing, remux_mp4
from edge.outputs.video.service import LiveVideo
from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import EncodedPacket
from smarteye.wire.messages import Alert, AlertClip, AlertState
from smarteye.wire.rules import ClipSettings, RuleKind, Severity
from tests.support.h264 import Encoding, picture
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(60)

FPS = 10
GOP_S = 1.0  # the encoder's keyframe interval in these tests
T0 = 1_000.0  # capture times are the stream's own: a synthetic clock, fed as fast as the encoder takes it


@dataclass
class Made:
    alert: Alert
    mp4: bytes
    clip: AlertClip


class Clips:
    """What a recorder hands over (on its own thread)."""

    def __init__(self) -> None:
        self.made: list[Made] = []
        self._lock = threading.Lock()

    def __call__(self, alert: Alert, mp4: bytes, clip: AlertClip) -> None:
        with self._lock:
            self.made.append(Made(alert, mp4, clip))

    def __len__(self) -> int:
        with self._lock:
            return len(self.made)


def start_alert(alert_id: str, start_time: float) -> Alert:
    return Alert(
        node="node1", id=f"{alert_id}:0", alert_id=alert_id, seq=0, state=AlertState.START, stream="cam",
        rule="door", rule_kind=RuleKind.ENTER, severity=Severity.WARNING, zone="door", objects=[], count=1,
        capture_time=start_time, start_time=start_time, publish_time=time.time(), rules_version=0,
    )  # fmt: skip


@dataclass
class Decoded:
    keyframes: list[bool]
    times: list[float]  # presentation times in seconds
    duration: float


def decode_mp4(mp4: bytes) -> Decoded:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
        duration = float(stream.duration * stream.time_base)
    return Decoded([f.key_frame for f in frames], [float(f.pts * f.time_base) for f in frames], duration)


class Feed:
    """A started encoder at FPS and a keyframe every GOP_S of capture time; frames in at `capture(t)`."""

    def __init__(self, size: tuple[int, int] = (320, 240)) -> None:
        self.encoding = Encoding(EncoderConfig(keyframe_interval_s=GOP_S))
        self.encoding.encoder.start()
        self.size = size
        self.step = 0
        self.made: list[EncodedPacket] = []

    @property
    def fanout(self) -> PacketFanout:
        return self.encoding.fanout

    def run(self, start: float, end: float) -> None:
        """Frames captured from `start` up to (not including) `end`, one every 1/FPS s."""
        for t in np.arange(start, end - 1e-9, 1 / FPS):
            self.step += 1
            self.made.append(self.encoding.encode(picture(*self.size, self.step % 40), round(float(t), 3)))

    def settled(self, recorder: ClipRecorder) -> None:
        """Wait until the recorder's thread has taken every packet made so far."""
        last = self.made[-1]
        wait_for(lambda: bool(recorder.ring.gops) and recorder.ring.gops[-1][-1] is last, 5)

    def stop(self) -> None:
        self.encoding.encoder.stop()


@pytest.fixture
def feed() -> Iterator[Feed]:
    f = Feed()
    yield f
    f.stop()


def make_packets(seconds: float, size: tuple[int, int] = (160, 120)) -> list[EncodedPacket]:
    feed = Feed(size)
    try:
        feed.run(T0, T0 + seconds)
    finally:
        feed.stop()
    return feed.made


@pytest.fixture(scope="module")
def ten_seconds() -> list[EncodedPacket]:
    return make_packets(10)


def test_a_clip_reaches_pre_s_back_to_a_keyframe_and_post_s_forward(feed: Feed) -> None:
    """An alert at T0+5 with pre 2 s and post 2 s: the MP4 starts on the keyframe at or before T0+3, ends at
    T0+7, decodes in order, and lasts pre + post within one GOP."""
    clips = Clips()
    recorder = ClipRecorder(feed.fanout, clips)
    try:
        recorder.want(ClipSettings(pre_s=2, post_s=2))
        assert feed.fanout.consumers == 2  # the test's own reader, and the recorder
        feed.run(T0, T0 + 5)
        feed.settled(recorder)
        assert recorder.request(start_alert("a1", T0 + 5), pre_s=2, post_s=2)
        feed.run(T0 + 5, T0 + 8)
        wait_for(lambda: len(clips) == 1, 10)
    finally:
        recorder.stop()

    made = clips.made[0]
    assert made.alert.alert_id == "a1"
    assert made.clip.bytes == len(made.mp4)
    assert made.clip.start_time == T0 + 3  # the keyframe at or before start - pre_s (keyframes every second)
    assert made.clip.end_time == pytest.approx(T0 + 7)
    decoded = decode_mp4(made.mp4)
    assert decoded.keyframes[0] is True
    assert decoded.times == sorted(decoded.times) and decoded.times[0] == 0.0
    assert len(decoded.times) == round((made.clip.end_time - made.clip.start_time) * FPS) + 1
    assert 4.0 <= decoded.duration <= 4.0 + GOP_S + 0.1
    assert made.mp4.find(b"moov") < made.mp4.find(b"mdat")  # +faststart: playable while it downloads
    assert recorder.outcomes == {"made": 1}


def test_the_ring_keeps_pre_s_from_a_keyframe_within_its_seconds_and_bytes(ten_seconds: list[EncodedPacket]) -> None:
    """The ring holds just enough to reach pre_s back to a keyframe, never starts mid-GOP, and its hard bounds hold
    whatever the keep time (a GOP that alone breaks them is dropped whole)."""
    ring = PacketRing(max_bytes=10**9, max_seconds=60)
    for packet in ten_seconds:
        ring.add(packet, keep_s=2.0)
        newest = packet.capture_time
        assert ring.gops[0][0].keyframe
        assert ring.gops[0][0].capture_time <= newest - 2.0 or ring.gops[0][0] is ten_seconds[0]
        assert ring.seconds <= 2.0 + GOP_S + 1e-6
    assert ring.bytes == sum(len(p.data) for g in ring.gops for p in g)

    by_seconds = PacketRing(max_bytes=10**9, max_seconds=2.5)
    for packet in ten_seconds:
        by_seconds.add(packet, keep_s=30.0)  # asks for more than the bounds allow
        assert by_seconds.seconds <= 2.5
        assert by_seconds.gops[0][0].keyframe

    gop_bytes = max(sum(len(p.data) for p in g) for g in _gops(ten_seconds))
    by_bytes = PacketRing(max_bytes=2 * gop_bytes, max_seconds=60)
    for packet in ten_seconds:
        by_bytes.add(packet, keep_s=30.0)
        assert by_bytes.bytes <= 2 * gop_bytes
        assert not by_bytes.gops or by_bytes.gops[0][0].keyframe
    assert len(by_bytes) > 0

    tiny = PacketRing(max_bytes=len(ten_seconds[0].data) // 2, max_seconds=60)
    for packet in ten_seconds:
        tiny.add(packet, keep_s=30.0)
        assert tiny.bytes <= tiny.max_bytes
    assert len(tiny) == 0 and tiny.dropped == len(ten_seconds)


def test_after_a_pause_in_the_video_a_clip_starts_at_the_keyframe_that_ended_it() -> None:
    """Frames stopped for 5 s (the source stalled; detection warming up does the same): a clip reaching back into
    the pause starts at the keyframe after it, not seconds of one stale picture earlier."""
    feed = Feed((160, 120))
    try:
        feed.run(T0, T0 + 2.5)
        feed.run(T0 + 8, T0 + 9)  # the encoder restarts with a keyframe after a pause
    finally:
        feed.stop()
    ring = PacketRing(max_bytes=10**9, max_seconds=60)
    for packet in feed.made:
        ring.add(packet, keep_s=30.0)
    assert [g[0].capture_time - T0 for g in ring.gops] == pytest.approx([0, 1, 2, 8])
    assert ring.since(T0 + 6)[0].capture_time == T0 + 8
    assert ring.since(T0 + 2.2)[0].capture_time == T0 + 2  # inside a GOP: its keyframe, as always
    assert ring.since(T0 + 2.4)[0].capture_time == T0 + 2  # the GOP's last packet is still in the window


def _gops(packets: list[EncodedPacket]) -> list[list[EncodedPacket]]:
    gops: list[list[EncodedPacket]] = []
    for packet in packets:
        if packet.keyframe:
            gops.append([])
        if gops:
            gops[-1].append(packet)
    return gops


def test_remux_keeps_every_packet_and_refuses_to_start_mid_gop(ten_seconds: list[EncodedPacket]) -> None:
    decoded = decode_mp4(remux_mp4(ten_seconds))
    assert len(decoded.times) == len(ten_seconds)
    assert decoded.keyframes == [p.keyframe for p in ten_seconds]
    assert decoded.times == pytest.approx([(p.pts - ten_seconds[0].pts) / 90_000 for p in ten_seconds])
    with pytest.raises(ClipError, match="keyframe"):
        remux_mp4(ten_seconds[1:])
    with pytest.raises(ClipError, match="keyframe"):
        remux_mp4([])


def test_concurrent_clips_are_capped_per_stream(feed: Feed) -> None:
    """At most max_pending clips are recorded at once; the next alert gets none (counted), later ones do again."""
    clips = Clips()
    recorder = ClipRecorder(feed.fanout, clips, ClipLimits(max_pending=2))
    try:
        recorder.want(ClipSettings(pre_s=1, post_s=1))
        feed.run(T0, T0 + 2)
        feed.settled(recorder)
        assert recorder.request(start_alert("a1", T0 + 2), 1, 1)
        assert recorder.request(start_alert("a2", T0 + 2), 1, 1)
        assert not recorder.request(start_alert("a3", T0 + 2), 1, 1)
        assert recorder.active == 2
        feed.run(T0 + 2, T0 + 3.5)
        wait_for(lambda: len(clips) == 2, 10)
        assert recorder.active == 0
        assert recorder.request(start_alert("a4", T0 + 3.5), 1, 1)
        feed.run(T0 + 3.5, T0 + 5)
        wait_for(lambda: len(clips) == 3, 10)
    finally:
        recorder.stop()
    assert sorted(m.alert.alert_id for m in clips.made) == ["a1", "a2", "a4"]
    assert recorder.outcomes == {"made": 3, "skipped": 1}


def test_a_clip_without_video_is_skipped_and_a_stalled_one_is_cut_short(feed: Feed) -> None:
    """No packet in range: logged and skipped. The stream stops mid-clip: the clip is cut at what arrived.
    Neither stops the recorder: the next clip is made."""
    clips = Clips()
    recorder = ClipRecorder(feed.fanout, clips, ClipLimits(stall_s=0.2))
    try:
        recorder.want(ClipSettings(pre_s=1, post_s=0.3))
        assert recorder.request(start_alert("nothing", T0), 1, 0.3)  # no video has come yet, and none comes
        wait_for(lambda: recorder.outcomes["skipped"] == 1, 5)
        assert len(clips) == 0

        feed.run(T0, T0 + 2)
        feed.settled(recorder)
        assert recorder.request(start_alert("stalled", T0 + 2), 1, 0.3)  # and the stream stops here
        wait_for(lambda: len(clips) == 1, 5)
        stalled = clips.made[0]
        assert stalled.clip.end_time < T0 + 2 and stalled.clip.start_time <= T0 + 1
        assert decode_mp4(stalled.mp4).keyframes[0] is True

        assert recorder.request(start_alert("later", T0 + 3), 1, 0.3)
        feed.run(T0 + 2, T0 + 4)
        wait_for(lambda: len(clips) == 2, 5)
    finally:
        recorder.stop()
    assert [m.alert.alert_id for m in clips.made] == ["stalled", "later"]
    assert recorder.outcomes == {"skipped": 1, "shortened": 1, "made": 1}


def test_a_clip_is_cut_short_at_its_size_cap(feed: Feed) -> None:
    clips = Clips()
    recorder = ClipRecorder(feed.fanout, clips)
    try:
        recorder.want(ClipSettings(pre_s=1, post_s=5))
        feed.run(T0, T0 + 1)
        feed.settled(recorder)
        cap = sum(len(p.data) for g in recorder.ring.gops for p in g) * 2  # about two seconds of video
        recorder.limits = ClipLimits(max_clip_bytes=cap)
        assert recorder.request(start_alert("big", T0 + 1), 1, 5)
        feed.run(T0 + 1, T0 + 7)
        wait_for(lambda: len(clips) == 1, 5)
    finally:
        recorder.stop()
    made = clips.made[0]
    assert made.clip.end_time < T0 + 6  # not the full post_s
    assert len(decode_mp4(made.mp4).times) < 6 * FPS
    assert recorder.outcomes == {"shortened": 1}


def test_wanting_clips_keeps_the_stream_encoding_and_not_wanting_them_lets_it_idle() -> None:
    """LiveVideo encodes a stream only while its fan-out has a consumer: the recorder is one while the stream's
    rules want clips, so alerts get video even when nobody watches."""
    video = LiveVideo(VideoConfig.model_validate({"whep": {"enabled": False}}), "node1", ["cam"], {0: "person"})
    video.start()
    recorder = ClipRecorder(video.fanouts["cam"], Clips())
    encoder = video.encoders["cam"]
    try:
        video.submit("cam", picture(160, 120), [], time.time(), 10.0)
        assert encoder.frames_in == 0  # nobody consumes: not even drawn

        recorder.want(ClipSettings())
        video.submit("cam", picture(160, 120), [], time.time(), 10.0)
        assert encoder.frames_in == 1
        wait_for(lambda: len(recorder.ring) == 1, 5)  # encoded, and into the ring

        recorder.want(None)
        assert video.fanouts["cam"].consumers == 0
        video.submit("cam", picture(160, 120), [], time.time(), 10.0)
        assert encoder.frames_in == 1
        wait_for(lambda: len(recorder.ring) == 0, 5)  # what was kept is let go
    finally:
        recorder.stop()
        video.stop()
