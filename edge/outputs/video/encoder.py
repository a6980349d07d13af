"""The one H.264 encoder per stream: every source frame in (latest wins), annotated here, packets out to the fan-out.

Runs on its own thread so encoding never delays detection. libx264 with zero-latency tuning (no
B-frames, no lookahead: a frame in, its packet out), constrained baseline so every browser decodes
it, SPS/PPS repeated before each keyframe so a consumer can start at any keyframe. Keyframes come
periodically and whenever a consumer asks (a viewer joins or lost packets).

Frames arrive at the camera's rate from the source thread. The picture is shared with detection, so boxes are
drawn on the encoder's own copy, by a callback given with the frame (it knows the boxes for the frame's time).
The stream declares the source's real frame rate (`frame_rate`), so MPEG-TS players start at once.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from edge.config.video import EncoderConfig
from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import TIME_BASE, EncodedPacket, PtsClock

log = logging.getLogger("edge.video")

GAP_KEYFRAME_S = 1.0  # after a pause in frames (source outage), restart with a keyframe
FALLBACK_FPS = 15  # declared only while the source's rate is unknown (its first frames)
BACKLOG = 3  # frames waiting for the encoder at most: rides out a scheduling hiccup, the oldest goes beyond
RATE_CHANGE = 0.1  # the source's rate moved by more than this fraction: reopen to declare the new one

Draw = Callable[[np.ndarray], None]


@dataclass(slots=True)
class _Pending:
    image: np.ndarray
    capture_time: float
    draw: Draw | None


class StreamEncoder:
    def __init__(self, stream: str, config: EncoderConfig, fanout: PacketFanout) -> None:
        self.stream = stream
        self.config = config
        self.fanout = fanout
        # The viewers' fan-out as well, while the stream's H.264 passthrough cannot serve them (set by the live video).
        self.also: PacketFanout | None = None
        self._also_live: PacketFanout | None = None  # `also` once a keyframe reached it (never a P-frame first)
        # Bounded: a few frames absorb a moment without CPU (a loaded box, the GIL held by detection) instead of
        # dropping one; beyond that the oldest is replaced, so latency stays within BACKLOG frames.
        self._backlog: collections.deque[_Pending] = collections.deque()
        self.frame_rate: float | None = None  # the source's real rate, set by the live video as it learns it
        self._canvas: np.ndarray | None = None  # reused copy that boxes are drawn on
        self._cond = threading.Condition()
        self._stop = False
        self._force_keyframe = True
        self._codec: av.CodecContext | None = None
        self._yuv: np.ndarray | None = None  # reused conversion buffer (one per picture size)
        self._scaled: np.ndarray | None = None
        self.clock = PtsClock()  # the live video may make it count from its passthrough's epoch
        self._last_keyframe = 0.0
        self._last_capture = 0.0
        self.frames_in = 0
        self.frames_replaced = 0
        self.frames_encoded = 0
        self.frames_failed = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self._retry_at = 0.0
        self.encode_seconds = 0.0
        self.encode_cpu_seconds = 0.0  # this thread's CPU time for drawing + converting + encoding (not wall time)
        self.on_encoded: Callable[[float], None] | None = None  # seconds per frame, for the stage histogram
        self._thread = threading.Thread(target=self._run, name=f"encode-{stream}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)

    def submit(self, image: np.ndarray, capture_time: float, draw: Draw | None = None) -> None:
        """Hand over a BGR frame; with BACKLOG frames already waiting, the oldest is dropped (counted). Without
        `draw` the encoder owns `image`; with it, `image` is shared and only read: `draw` paints the boxes on the
        encoder's own copy."""
        with self._cond:
            if len(self._backlog) >= BACKLOG:
                self._backlog.popleft()
                self.frames_replaced += 1
            self._backlog.append(_Pending(image, capture_time, draw))
            self.frames_in += 1
            self._cond.notify()

    @property
    def waiting(self) -> int:
        """Frames handed over and not yet taken by the encoding thread."""
        return len(self._backlog)

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._force_keyframe = True

    # -- encoding thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._backlog and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                pending = self._backlog.popleft()
            image, capture_time = pending.image, pending.capture_time
            if time.monotonic() < self._retry_at:
                continue  # the encoder failed a moment ago: no reopen (and no error line) per frame
            try:
                started, cpu_started = time.perf_counter(), time.thread_time()
                if pending.draw is not None:
                    image = self._annotated(image, pending.draw)
                self._encode(image, capture_time)
                elapsed = time.perf_counter() - started
                self.encode_seconds += elapsed
                self.encode_cpu_seconds += time.thread_time() - cpu_started
                if self.on_encoded is not None:
                    self.on_encoded(elapsed)
            except av.FFmpegError as error:
                log.error("stream %s: video encoding failed (%s); restarting the encoder in 1 s", self.stream, error)
                self._codec = None
                self._retry_at = time.monotonic() + 1.0
            except Exception as error:  # one bad frame must not end the stream's video
                self.frames_failed += 1
                log.error("stream %s: frame of shape %s not encoded: %s", self.stream, image.shape, error)

    def _annotated(self, image: np.ndarray, draw: Draw) -> np.ndarray:
        """The shared picture copied into the reused canvas, with the boxes drawn on the copy."""
        if self._canvas is None or self._canvas.shape != image.shape:
            self._canvas = np.empty_like(image)
        np.copyto(self._canvas, image)
        draw(self._canvas)
        return self._canvas

    def _declared_rate(self) -> Fraction:
        rate = self.frame_rate or FALLBACK_FPS
        return Fraction(rate).limit_denominator(1001)

    def _rate_changed(self) -> bool:
        codec = self._codec
        if codec is None or not self.frame_rate or codec.framerate is None:
            return False
        declared = float(codec.framerate)
        return abs(self.frame_rate - declared) > RATE_CHANGE * declared

    def _open(self, width: int, height: int) -> av.CodecContext:
        config = self.config
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = TIME_BASE
        # The source's rate: it is the SPS timing players read as the frame duration, and the rate control's
        # per-frame budget. Without one, libx264 takes the 90 kHz time base for it: the VBV cap then allows
        # ~nothing per frame and the picture turns to grey mush.
        codec.framerate = self._declared_rate()
        codec.gop_size = 1_000_000  # keyframes are placed by time and on request, not by frame count
        codec.max_b_frames = 0
        codec.options = {
            "preset": config.preset,
            "tune": "zerolatency",
            "profile": "baseline",
            "crf": str(config.crf),
            "maxrate": f"{config.max_bitrate_kbps}k",
            "bufsize": f"{config.max_bitrate_kbps}k",  # one second of the cap
            "forced-idr": "1",
            "x264-params": "repeat-headers=1:scenecut=0:keyint=infinite:sliced-threads=0:threads=1",
        }
        codec.open()
        log.info(
            "stream %s: encoding %dx%d H.264 at %.4g fps (constrained baseline, %s)",
            self.stream, width, height, float(codec.framerate), config.preset,
        )  # fmt: skip
        return codec

    def _picture(self, image: np.ndarray) -> tuple[np.ndarray, int, int]:
        """The frame at the encoded size, as I420 in the reused buffer."""
        height, width = image.shape[:2]
        max_width = self.config.max_width
        if max_width and width > max_width:
            height = round(height * max_width / width)
            width = max_width
        width, height = max(2, width & ~1), max(2, height & ~1)  # 4:2:0 needs even sizes
        if (width, height) != image.shape[1::-1]:
            if self._scaled is None or self._scaled.shape[:2] != (height, width):
                self._scaled = np.empty((height, width, 3), np.uint8)
            cv2.resize(image, (width, height), dst=self._scaled, interpolation=cv2.INTER_AREA)
            image = self._scaled
        if self._yuv is None or self._yuv.shape != (height * 3 // 2, width):
            self._yuv = np.empty((height * 3 // 2, width), np.uint8)
        cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
        return self._yuv, width, height

    def _encode(self, image: np.ndarray, capture_time: float) -> None:
        yuv, width, height = self._picture(image)
        if self._codec is None or (self._codec.width, self._codec.height) != (width, height) or self._rate_changed():
            self._codec = self._open(width, height)
            self._force_keyframe = True
        pts = self.clock(capture_time)
        frame = av.VideoFrame.from_numpy_buffer(yuv, format="yuv420p")
        frame.pts = pts
        frame.time_base = TIME_BASE
        keyframe = (
            self._force_keyframe
            or capture_time - self._last_keyframe >= self.config.keyframe_interval_s
            or capture_time - self._last_capture >= GAP_KEYFRAME_S
        )
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
            self._force_keyframe = False
            self._last_keyframe = capture_time
        self._last_capture = capture_time
        for packet in self._codec.encode(frame):
            self.frames_encoded += 1
            self.keyframes += packet.is_keyframe
            encoded = EncodedPacket(
                self.stream, bytes(packet), packet.pts, packet.is_keyframe, capture_time, width, height
            )  # fmt: skip
            self.fanout.publish(encoded)
            if self.also is not self._also_live and (self.also is None or encoded.keyframe):
                self._also_live = self.also  # its viewers had the camera's packets: they go on from a keyframe
            if self._also_live is not None:
                self._also_live.publish(encoded)
