"""Open a source and yield stamped frames: PyAV for RTSP, MPEG-TS/UDP and files (keeping KLV
data packets with their pts), OpenCV for local cameras."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import av
import cv2

from edge.assets import find_asset, searched_places
from edge.config.source import SourceConfig, SourceKind
from edge.frame import DataWindow, Frame
from smarteye.config.urls import redact_text


class SourceError(Exception):
    """A source could not be opened or read; the message names the problem, without credentials."""


class SourceEnded(Exception):
    """A file reached its end and is not looping."""


def _describe(error: BaseException, config: SourceConfig) -> str:
    """A one-line reason with the URL's credentials removed."""
    if isinstance(error, av.ExitError):
        return f"no data within {config.open_timeout_s:g} s"  # our timeout interrupted FFmpeg
    if isinstance(error, av.FFmpegError) and error.strerror:
        text = error.strerror  # without FFmpeg's "[Errno N]" and the echoed URL
    else:
        text = str(error) or type(error).__name__
    return " ".join(redact_text(text, config.url).split())


class AvReader:
    """Reads RTSP, MPEG-TS over UDP and files with PyAV (FFmpeg)."""

    def __init__(self, config: SourceConfig, data_packets: DataWindow) -> None:
        self.config = config
        self.kind = config.resolved_kind
        self.data_packets = data_packets
        self.container: Any = None

    def _options(self) -> dict[str, str]:
        if self.kind is SourceKind.RTSP:
            # Probe for 0.5 s (the SDP already names the codec) and keep what was read while probing. With
            # `fflags=nobuffer` those packets were thrown away: the first keyframe with them, so the picture
            # waited for the next one (4.9 s to the first frame on a 2 s GOP; never within a 25 s GOP's first
            # 25 s). Kept, they reach the decoder at once: first frame 0.4-0.7 s after connecting, the few
            # probed frames stamped up to 0.5 s late.
            return {
                "rtsp_transport": self.config.rtsp_transport.value,
                "analyzeduration": "500000",
                "flags": "low_delay",
                "max_delay": "500000",
            }
        if self.kind is SourceKind.MPEGTS_UDP:
            # Probe briefly: a live feed has no index to read, and long probing delays the first frame.
            # No `nobuffer` here: it discards the packets read while probing, and a drone feed with a
            # long GOP may have sent its only keyframe for seconds among them.
            return {
                "overrun_nonfatal": "1",
                "fifo_size": "1000000",
                "analyzeduration": "2000000",
                "probesize": "1000000",
            }
        return {}

    def open(self) -> None:
        url = self.config.url
        if self.kind is SourceKind.FILE:
            found = find_asset(url, "media")
            if found is None:
                raise SourceError(f"file not found: {url} (also looked in {searched_places('media')})")
            url = str(found)
        try:
            self.container = av.open(
                url,
                options=self._options(),
                timeout=(self.config.open_timeout_s, self.config.open_timeout_s),
            )
        except av.FFmpegError as error:
            raise SourceError(f"cannot open {self.config.safe_url}: {_describe(error, self.config)}") from None
        if not self.container.streams.video:
            self.close()
            raise SourceError(f"{self.config.safe_url} has no video stream")

    def frames(self, stream: str, seq_start: int) -> Iterator[Frame]:
        """Decoded frames, each stamped with the wall clock when its packet arrived."""
        container = self.container
        video = container.streams.video[0]
        # Slice threading only: frame threading adds a frame of latency per thread and its extra
        # threads compete with inference for the few cores an edge box has.
        video.thread_type = "SLICE"
        data_streams = list(container.streams.data)
        pace = self.kind is SourceKind.FILE and self.config.realtime
        seq = seq_start
        start_wall: float | None = None
        start_pts: float | None = None
        decode_errors = 0
        try:
            for packet in container.demux(video, *data_streams):
                received = time.time()
                if packet.stream.type == "data":
                    if packet.size:
                        pts = float(packet.pts * packet.time_base) if packet.pts is not None else None
                        self.data_packets.add(pts, received, bytes(packet))
                    continue
                started = time.perf_counter()
                try:
                    decoded = packet.decode()
                except av.FFmpegError as error:
                    decode_errors += 1
                    if decode_errors > 50:
                        raise SourceError(
                            f"{self.config.safe_url}: undecodable video: {_describe(error, self.config)}"
                        ) from None
                    continue
                decode_s = time.perf_counter() - started
                data = self.data_packets.snapshot() if data_streams else ()
                for av_frame in decoded:
                    pts = float(av_frame.time) if av_frame.time is not None else None
                    if pace and pts is not None:
                        if start_wall is None or start_pts is None or pts < start_pts:
                            start_wall, start_pts = time.monotonic(), pts
                        delay = start_wall + (pts - start_pts) - time.monotonic()
                        if delay > 0:
                            time.sleep(min(delay, 1.0))
                        received = time.time()
                    seq += 1
                    frame = Frame.from_av(stream, seq, received, pts, av_frame, data)
                    frame.timings["decode"] = decode_s
                    if len(decoded) == 1 and av_frame.pts == packet.pts:  # its own packet: passthrough can forward it
                        frame.source_packet = packet
                    yield frame
        except av.FFmpegError as error:
            raise SourceError(f"{self.config.safe_url}: {_describe(error, self.config)}") from None
        if seq == seq_start:
            raise SourceError(f"{self.config.safe_url}: no decodable video frames")

    def close(self) -> None:
        if self.container is not None:
            # Closing a broken container must never mask the error that broke it.
            with contextlib.suppress(Exception):
                self.container.close()
            self.container = None


class CameraReader:
    """Reads a local camera (V4L2 device index or path) with OpenCV."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        device: int | str = int(self.config.url) if self.config.url.isdigit() else self.config.url
        capture = cv2.VideoCapture(device)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open camera {self.config.url}")
        self.capture = capture

    def frames(self, stream: str, seq_start: int) -> Iterator[Frame]:
        assert self.capture is not None
        seq = seq_start
        while True:
            ok, image = self.capture.read()
            received = time.time()
            if not ok:
                raise SourceError(f"camera {self.config.url} stopped delivering frames")
            seq += 1
            pts_ms = self.capture.get(cv2.CAP_PROP_POS_MSEC)
            yield Frame.from_bgr(stream, seq, received, pts_ms / 1000.0 if pts_ms > 0 else None, image)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


Reader = AvReader | CameraReader


def make_reader(config: SourceConfig, data_packets: DataWindow) -> Reader:
    if config.resolved_kind is SourceKind.CAMERA:
        return CameraReader(config)
    return AvReader(config, data_packets)
