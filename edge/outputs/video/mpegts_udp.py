"""The annotated stream as H.264 in MPEG-TS over UDP (QGroundControl's "MPEG-TS h.264" video, VLC).

The stream's encoded packets are muxed as they are (no re-encoding) on this output's own thread;
UDP never blocks on a missing listener, and a size change restarts the mux with fresh stream headers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import av

from smarteye.media.fanout import PacketFanout, ThreadPacketReader
from smarteye.media.packet import TIME_BASE, EncodedPacket

log = logging.getLogger("edge.video.mpegts")

TS_PACKETS_PER_DATAGRAM = 7  # 7 × 188 = 1316 bytes: fits a 1500-byte MTU
RETRY_S = 2.0


class MpegTsUdpOutput:
    def __init__(self, fanout: PacketFanout, url: str) -> None:
        self.fanout = fanout
        self.url = url
        self._reader: ThreadPacketReader | None = None
        self._stop = threading.Event()
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self.packets_sent = 0
        self.errors = 0
        self._last_request = 0.0
        self._thread = threading.Thread(target=self._run, name=f"mpegts-{fanout.stream}", daemon=True)

    def start(self) -> None:
        self._reader = self.fanout.subscribe_thread()
        self._thread.start()
        log.info("stream %s: MPEG-TS over UDP to %s", self.fanout.stream, self.url)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._reader is not None:
            self._reader.close()
        self._close()

    def _run(self) -> None:
        assert self._reader is not None
        retry_at = 0.0
        while not self._stop.is_set():
            packet = self._reader.get(0.25)
            if packet is None or time.monotonic() < retry_at:
                continue  # after a failure, packets are dropped until the retry time: no error per frame
            try:
                self._mux(packet)
            except Exception as error:  # the output must outlive any failure (unreachable host, bad name…)
                self.errors += 1
                retry_at = time.monotonic() + RETRY_S
                log.warning("stream %s: MPEG-TS output to %s failed (%s); retrying in %.0f s",
                            self.fanout.stream, self.url, error, RETRY_S)  # fmt: skip
                self._close()

    def _open(self, packet: EncodedPacket) -> None:
        container = av.open(f"{self.url}?pkt_size={188 * TS_PACKETS_PER_DATAGRAM}", mode="w", format="mpegts")
        stream = container.add_stream("h264")
        stream.width, stream.height = packet.width, packet.height
        stream.time_base = TIME_BASE
        self._container, self._stream, self._size = container, stream, (packet.width, packet.height)

    def _mux(self, packet: EncodedPacket) -> None:
        if self._size != (packet.width, packet.height):
            self._close()
            if not packet.keyframe:  # a new mux starts at a keyframe: ask once a second at most
                if time.monotonic() - self._last_request >= 1.0:
                    self._last_request = time.monotonic()
                    self.fanout.request_keyframe()
                return
            self._open(packet)
        assert self._container is not None
        out = av.Packet(packet.data)
        out.pts = out.dts = packet.pts
        out.time_base = TIME_BASE
        out.is_keyframe = packet.keyframe
        out.stream = self._stream
        self._container.mux(out)
        self.packets_sent += 1

    def _close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._container.close()
        self._container, self._stream, self._size = None, None, None
