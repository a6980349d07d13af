"""A WHEP viewer in Python (aiortc): for tests and the viewer benchmark, like a browser but scriptable.

It offers to receive H.264 video and opens the `smarteye` data channel, counts decoded frames,
keeps their size, and turns each frame's RTP timestamp into its capture time (the server's
`video_frame` reference) to measure capture → decoded latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import httpx
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from smarteye.media.aiortc_internals import received_rtp_origin


@dataclass
class ViewerStats:
    frames: int = 0
    width: int | None = None
    height: int | None = None
    first_frame_time: float | None = None
    states: list[str] = field(default_factory=list)
    timing_messages: int = 0
    latencies: list[float] = field(default_factory=list)  # capture → decoded, s


class WhepViewer:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.stats = ViewerStats()
        self.timing: tuple[int, float, int] | None = None  # the server's RTP timestamp ↔ capture time reference
        self.pc = RTCPeerConnection()
        self.resource: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpReceiver.getCapabilities("video").codecs if c.mimeType.lower() == "video/h264"]
        )
        channel = self.pc.createDataChannel("smarteye")
        channel.on("message", self._on_message)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._task = asyncio.ensure_future(self._consume(track))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.post(
                self.url, content=self.pc.localDescription.sdp,
                headers={**self.headers, "Content-Type": "application/sdp"},
            )  # fmt: skip
            response.raise_for_status()
            self.resource = str(httpx.URL(self.url).join(response.headers["location"]))
        await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))

    def _on_message(self, message: str | bytes) -> None:
        data = json.loads(message)
        if data.get("kind") == "video_frame":
            self.timing = (data["rtp_timestamp"], data["capture_time"], data["clock_rate"])
            self.stats.timing_messages += 1
        elif data.get("kind") == "video_state":
            self.stats.states.append(data["state"])

    def _rtp_timestamp(self, frame_pts: int) -> int | None:
        """aiortc hands out frames with pts counted from the first RTP timestamp it received; add that back."""
        receivers = self.pc.getReceivers()
        origin = received_rtp_origin(receivers[0]) if receivers else None
        return None if origin is None else (origin + frame_pts) % 2**32

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.time()
                stats = self.stats
                stats.frames += 1
                stats.width, stats.height = frame.width, frame.height
                stats.first_frame_time = stats.first_frame_time or now
                rtp = self._rtp_timestamp(frame.pts) if frame.pts is not None else None
                if rtp is not None and self.timing is not None:
                    ref_rtp, ref_capture, rate = self.timing
                    ticks = (rtp - ref_rtp) % 2**32
                    ticks -= 2**32 if ticks >= 2**31 else 0
                    stats.latencies.append(now - (ref_capture + ticks / rate))

    async def stop(self) -> None:
        if self.resource:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=5) as client:
                    await client.delete(self.resource, headers=self.headers)
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()
