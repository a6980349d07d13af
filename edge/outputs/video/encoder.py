"""The one H.264 encoder per stream: annotated frames in (latest wins), packets out to the stream's fan-out.

Runs on its own thread so encoding never delays detection. libx264 with zero-latency tuning (no
B-frames, no lookahead: a frame in, its packet out), constrained baseline so every browser decodes
it, SPS/PPS repeated before each keyframe so a consumer can start at any keyframe. Keyframes come
periodically and whenever a consumer asks (a viewer joins or lost packets).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av
import cv2
import numpy as np

from edge.config.video import EncoderConfig
from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import TIME_BASE, VIDEO_CLOCK, EncodedPacket

log = logging.getLogger("edge.video")

GAP_KEYFRAME_S = 1.0  # after a pause in frames (source outage), restart with a keyframe
NOMINAL_FPS = 15  # for the rate control's per-frame budget only


class StreamEncoder:
    def __init__(self, stream: str, config: EncoderConfig, fanout: PacketFanout) -> None:
        self.stream = stream
        self.config = config
        self.fanout = fanout
        self._slot: tuple[np.ndarray, float] | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._force_keyframe = True
        self._codec: av.CodecContext | None = None
        self._yuv: np.ndarray | None = None  # reused conversion buffer (one per picture size)
        self._scaled: np.ndarray | None = None
        self._epoch: float | None = None
        self._last_pts = -1
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
        self.on_encoded: Callable[[float], None] | None = None  # seconds per frame, for the stage histogram
        self._thread = threading.Thread(target=self._run, name=f"encode-{stream}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)

    def submit(self, image: np.ndarray, capture_time: float) -> None:
        """Hand over an annotated BGR frame (the encoder owns it now); an unencoded older one is replaced."""
        with self._cond:
            if self._slot is not None:
                self.frames_replaced += 1
            self._slot = (image, capture_time)
            self.frames_in += 1
            self._cond.notify()

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._force_keyframe = True

    # -- encoding thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                image, capture_time = self._slot  # type: ignore[misc]
                self._slot = None
            if time.monotonic() < self._retry_at:
                continue  # the encoder failed a moment ago: no reopen (and no error line) per frame
            try:
                started = time.perf_counter()
                self._encode(image, capture_time)
                elapsed = time.perf_counter() - started
                self.encode_seconds += elapsed
                if self.on_encoded is not None:
                    self.on_encoded(elapsed)
            except av.FFmpegError as error:
                log.error("stream %s: video encoding failed (%s); restarting the encoder in 1 s", self.stream, error)
                self._codec = None
                self._retry_at = time.monotonic() + 1.0
            except Exception as error:  # one bad frame must not end the stream's video
                self.frames_failed += 1
                log.error("stream %s: frame of shape %s not encoded: %s", self.stream, image.shape, error)

    def _open(self, width: int, height: int) -> av.CodecContext:
        config = self.config
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = TIME_BASE
        # Frames come at the detection rate (variable). Without a frame rate, libx264 takes the 90 kHz
        # time base for one: the VBV cap then allows ~nothing per frame and the picture turns to grey mush.
        codec.framerate = Fraction(NOMINAL_FPS)
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
            "stream %s: encoding %dx%d H.264 (constrained baseline, %s)", self.stream, width, height, config.preset
        )
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
        if self._codec is None or (self._codec.width, self._codec.height) != (width, height):
            self._codec = self._open(width, height)
            self._force_keyframe = True
        if self._epoch is None:
            self._epoch = capture_time
        pts = max(self._last_pts + 1, round((capture_time - self._epoch) * VIDEO_CLOCK))
        self._last_pts = pts
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
            self.fanout.publish(
                EncodedPacket(self.stream, bytes(packet), packet.pts, packet.is_keyframe, capture_time, width, height)
            )
