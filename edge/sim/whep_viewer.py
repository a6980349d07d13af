"""A WHEP viewer in Python (aiortc): for tests and the viewer benchmark, like a browser but scriptable.

It offers to receive H.264 video and opens the `smarteye` data channel, counts decoded frames,
keeps their size, and pairs the frame timing messages with the frames' RTP timestamps.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from dataclasses import dataclass, field

import httpx
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


@dataclass
class ViewerStats:
    frames: int = 0
    width: int | None = None
    height: int | None = None
    first_frame_time: float | None = None
    timings: dict[int, float] = field(default_factory=dict)  # RTP timestamp → capture time
    states: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # capture → decoded, s


class WhepViewer:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.stats = ViewerStats()
        # aiortc hands out frames with pts counted from the first frame (not the RTP timestamp):
        # the RTP timestamp of pts 0 is learnt by vote over the timing messages.
        self._rtp_base: int | None = None
        self._base_votes: collections.Counter[int] = collections.Counter()
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
            timings = self.stats.timings
            timings[data["rtp_timestamp"]] = data["capture_time"]
            if len(timings) > 300:
                timings.pop(next(iter(timings)))
        elif data.get("kind") == "video_state":
            self.stats.states.append(data["state"])

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.time()
                stats = self.stats
                stats.frames += 1
                stats.width, stats.height = frame.width, frame.height
                stats.first_frame_time = stats.first_frame_time or now
                if frame.pts is None:
                    continue
                if self._rtp_base is None:
                    self._base_votes.update((rtp - frame.pts) % 2**32 for rtp in stats.timings)
                    base, votes = self._base_votes.most_common(1)[0] if self._base_votes else (0, 0)
                    self._rtp_base = base if votes >= 3 else None
                    continue
                capture = stats.timings.get((self._rtp_base + frame.pts) % 2**32)
                if capture is not None:
                    stats.latencies.append(now - capture)

    async def stop(self) -> None:
        if self.resource:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=5) as client:
                    await client.delete(self.resource, headers=self.headers)
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()
