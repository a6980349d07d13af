"""Real H.264 for tests: synthetic pictures with a known red square, a started StreamEncoder wired to its
fan-out, and a fresh FFmpeg decoder to check what comes out."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import av
import numpy as np

from edge.config.video import EncoderConfig
from edge.outputs.video.encoder import StreamEncoder
from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import EncodedPacket

RED = (0, 0, 255)  # BGR


def picture(width: int, height: int, step: int = 0) -> np.ndarray:
    """Blue left→right and green top→bottom gradients (no red anywhere) with a red square moving right."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.float32)[None, :].astype(np.uint8)
    image[:, :, 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None].astype(np.uint8)
    x = 8 + 6 * step
    image[16:48, x : x + 32] = RED
    return image


class Encoding:
    """A StreamEncoder wired to its fan-out, with a thread reader that sees every packet."""

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


@contextlib.contextmanager
def live_camera(width: int = 160, height: int = 120, fps: float = 10.0) -> Iterator[Encoding]:
    """A real libx264 stream (keyframe every second) of moving pictures, fed at `fps` until the block ends: the
    camera of WHEP tests, whose viewers decode it."""
    encoding = Encoding(EncoderConfig(keyframe_interval_s=1))
    encoding.encoder.start()
    stop = threading.Event()

    def feed() -> None:
        step = 0
        while not stop.is_set():
            encoding.encoder.submit(picture(width, height, step % 20), time.time())
            step += 1
            time.sleep(1 / fps)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield encoding
    finally:
        stop.set()
        thread.join(2)
        encoding.encoder.stop()


def decode(packets: list[EncodedPacket]) -> list[np.ndarray]:
    """Decode with a fresh FFmpeg H.264 decoder, as a viewer joining at the first packet would."""
    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for packet in [*packets, None]:
        for frame in decoder.decode(None if packet is None else av.Packet(packet.data)):
            frames.append(frame.to_ndarray(format="bgr24"))
    return frames
