"""WebRTC viewers of already-encoded streams (aiortc), signalled with WHEP (offer in, answer out).

Every viewer's sender packs the very packets the stream's one encoder made (aiortc sends an
`av.Packet` as is: no decoding, no per-viewer encoder; `MediaRelay` would re-encode per viewer).
Each viewer also gets a data channel (`smarteye`, opened by the viewer) on which it receives the RTP
timestamp ↔ capture time reference (one pair maps every frame), the stream's state, and clock replies; for a
passthrough stream (the source's H.264 forwarded unchanged) also each frame's boxes, for the page to draw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from smarteye.config.ice import IceServer
from smarteye.media.aiortc_internals import answer_as_dtls_server, sent_rtp_timestamp, take_keyframe_request
from smarteye.media.fanout import AsyncPacketReader, PacketFanout
from smarteye.media.packet import VIDEO_CLOCK, EncodedPacket
from smarteye.wire.messages import VideoBoxes, VideoClock, VideoFrameTiming, VideoState, VideoStreamState

log = logging.getLogger("edge.video.webrtc")

DATA_CHANNEL = "smarteye"
STATE_CHECK_S = 0.5
CONNECT_TIMEOUT_S = 30.0  # a viewer that has not connected by then is gone
BOXES_BUFFER_LIMIT = 1 << 16  # bytes queued on a viewer's data channel beyond which a frame's boxes are skipped
RECHECK_S = 2.0  # how often a session's credential is checked again (WhepServer.create's still_allowed)


class WhepError(Exception):
    """A request a WHEP endpoint refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EncodedVideoTrack(MediaStreamTrack):
    """A video track whose `recv` returns encoded packets from the stream's fan-out."""

    kind = "video"

    def __init__(self, session: WhepSession) -> None:
        super().__init__()
        self._session = session
        self._started = False

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if not self._started:  # aiortc asks for the first frame only once ICE and DTLS are up
            self._started = True
            self._session.reader.queue.skip_to_latest_keyframe()
        packet = await self._session.reader.get()
        self._session.before_send(packet)
        return packet.av_packet()


@dataclass
class WhepSession:
    """One viewer: its peer connection, its queue on the fan-out, and its data channel."""

    id: str
    fanout: PacketFanout
    reader: AsyncPacketReader
    pc: RTCPeerConnection
    sender: RTCRtpSender | None = None
    channel: RTCDataChannel | None = None
    node: str = ""
    principal: str = ""  # who asked for it (user, token or client address): its sessions are limited
    # Whether the credential that opened the session may still watch (blocking: run in a thread). A session is
    # authenticated once, at its offer: without this, revoking its token or user would leave it playing.
    still_allowed: Callable[[], bool] | None = None
    created: float = field(default_factory=time.time)
    frames_sent: int = 0
    boxes_sent: int = 0
    boxes_skipped: int = 0  # the viewer's data channel was not open or had fallen behind
    _previous_pts: int | None = None
    _rtp_origin: int | None = None
    _sent_epoch: float | None = None  # capture time of pts 0 as last told to the viewer
    _shown_state: VideoState | None = None
    _watch: asyncio.Task[None] | None = None
    _timing_template: str = ""
    _boxes_template: str = ""

    def __post_init__(self) -> None:
        # The per-frame message of every viewer differs only in two numbers: the model is rendered once
        # with placeholders (so it stays the single source of the format) and they are filled in per frame.
        rendered = VideoFrameTiming(node=self.node, stream=self.fanout.stream, rtp_timestamp=1, capture_time=2.5)
        self._timing_template = (
            rendered.model_dump_json()
            .replace("%", "%%")
            .replace('"rtp_timestamp":1', '"rtp_timestamp":%d')
            .replace('"capture_time":2.5', '"capture_time":%.6f')
        )
        boxes = VideoBoxes(node=self.node, stream=self.fanout.stream, capture_time=2.5, width=1, height=1, boxes=[])
        self._boxes_template = (
            boxes.model_dump_json()
            .replace("%", "%%")
            .replace('"capture_time":2.5', '"capture_time":%.6f')
            .replace('"width":1', '"width":%d')
            .replace('"height":1', '"height":%d')
            .replace('"boxes":[]', '"boxes":%s')
        )

    def before_send(self, packet: EncodedPacket) -> None:
        """Called as a frame leaves the queue: tell the viewer how RTP timestamps map to capture times (once,
        and again when the mapping changes), and pass its keyframe requests on to the encoder."""
        sender = self.sender
        if sender is not None:
            if take_keyframe_request(sender):  # the viewer sent PLI/FIR: aiortc does not encode, ask our encoder
                self.fanout.request_keyframe()
            if self._rtp_origin is None and self._previous_pts is not None:
                sent = sent_rtp_timestamp(sender)  # the previous frame's, now sent
                if sent is not None:
                    self._rtp_origin = (sent - self._previous_pts) % 2**32
            epoch = packet.capture_time - packet.pts / VIDEO_CLOCK  # constant while the encoder runs
            if self._rtp_origin is not None and (self._sent_epoch is None or abs(epoch - self._sent_epoch) > 0.002):
                rtp_timestamp = (self._rtp_origin + packet.pts) % 2**32
                if self.send(self._timing_template % (rtp_timestamp, packet.capture_time)):
                    self._sent_epoch = epoch
        if packet.boxes is not None:
            self._send_boxes(packet)
        self._previous_pts = packet.pts
        self.frames_sent += 1

    def _send_boxes(self, packet: EncodedPacket) -> None:
        """The frame's boxes, as it leaves (they reach the page before the frame is shown, which waits in the
        jitter buffer). Bounded: a viewer whose channel has fallen behind misses boxes, never holds memory."""
        channel = self.channel
        if channel is None or channel.bufferedAmount > BOXES_BUFFER_LIMIT:
            self.boxes_skipped += 1
            return
        assert packet.boxes is not None
        text = self._boxes_template % (packet.capture_time, packet.width, packet.height, packet.boxes.decode())
        if self.send(text):
            self.boxes_sent += 1
        else:
            self.boxes_skipped += 1

    def send(self, text: str) -> bool:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            with contextlib.suppress(Exception):  # a closing channel: the session is ending anyway
                channel.send(text)
                return True
        return False

    async def _still_allowed(self) -> bool:
        """The check in a thread (it reads the accounts database); a check that fails ends the session, as
        the station's WebSockets do (api/guard.py): access is not kept on an error."""
        assert self.still_allowed is not None
        try:
            return await asyncio.to_thread(self.still_allowed)
        except Exception:
            log.exception("viewer %s: its credential could not be checked", self.id)
            return False

    def on_channel_message(self, message: str | bytes) -> None:
        try:
            request = json.loads(message)
        except (ValueError, TypeError):
            return
        if (
            isinstance(request, dict)
            and request.get("kind") == "clock"
            and isinstance(request.get("client"), int | float)
        ):
            self.send(VideoClock(node=self.node, client=float(request["client"]), server=time.time()).model_dump_json())

    async def watch_state(self, expire: Callable[[], Awaitable[object]], recheck_s: float = RECHECK_S) -> None:
        """Tell the viewer when its stream goes down or comes back (it never has to reload); end a session
        whose viewer never completed ICE (WHEP here has no trickle, so ICE alone would wait forever), and one
        whose credential is no longer allowed (checked every `recheck_s`)."""
        checked = time.monotonic()
        while True:
            if self.pc.connectionState != "connected" and time.time() - self.created > CONNECT_TIMEOUT_S:
                log.info("viewer %s never connected within %.0f s: session ended", self.id, CONNECT_TIMEOUT_S)
                await expire()
                return
            if self.still_allowed is not None and time.monotonic() - checked >= recheck_s:
                checked = time.monotonic()
                if not await self._still_allowed():
                    log.info("viewer %s (%s): credential revoked or no longer allowed: session ended",
                             self.id, self.principal)  # fmt: skip
                    await expire()
                    return
            status = self.fanout.status()
            if status.state is not self._shown_state or self._shown_state is None:
                message = VideoStreamState(
                    node=self.node, stream=status.stream, state=status.state, reason=status.reason,
                    width=status.width, height=status.height, fps=status.fps, time=time.time(),
                )  # fmt: skip
                if self.channel is not None and self.channel.readyState == "open":
                    self.send(message.model_dump_json())
                    self._shown_state = status.state
            await asyncio.sleep(STATE_CHECK_S)


class WhepServer:
    """The WHEP resources of one process (edge node or ground station): create, list and end sessions."""

    def __init__(
        self,
        ice_servers: list[IceServer] | None = None,
        max_sessions: int = 64,
        node: str = "",
        max_sessions_per_principal: int = 16,
        cors_origins: list[str] | None = None,
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.recheck_s = recheck_s  # how often each session's still_allowed runs
        self.ice_servers = ice_servers or []
        self.cors_origins = cors_origins or []  # web players' origins allowed by the HTTP routes (whep_http)
        self.max_sessions = max_sessions
        self.max_sessions_per_principal = max_sessions_per_principal
        self.node = node
        self.sessions: dict[str, WhepSession] = {}
        self._pending: dict[str, int] = {}  # offers being answered, per principal: they count against the limits
        self.loop: asyncio.AbstractEventLoop | None = None

    def _configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in self.ice_servers]
        return RTCConfiguration(iceServers=servers)

    async def create(
        self,
        offer_sdp: str,
        fanout: PacketFanout,
        node: str | None = None,
        principal: str = "",
        still_allowed: Callable[[], bool] | None = None,
    ) -> tuple[str, str]:
        """Answer a viewer's SDP offer; returns the session id (for its resource URL) and the SDP answer.

        `principal` names who asks (user, token or client address): one of them may hold at most
        `max_sessions_per_principal` sessions, so a single viewer cannot take every slot. `still_allowed`
        (blocking) is run every `recheck_s` while the session lasts: once False, the session ends."""
        if len(self.sessions) + sum(self._pending.values()) >= self.max_sessions:
            raise WhepError(503, f"this server already has {self.max_sessions} viewers")
        if self.principal_sessions(principal) >= self.max_sessions_per_principal:
            raise WhepError(
                429, f"{principal or 'this viewer'} already has {self.max_sessions_per_principal} WHEP sessions: "
                "end one (DELETE its session URL) first",
            )  # fmt: skip
        self._pending[principal] = self._pending.get(principal, 0) + 1
        try:
            return await self._create(offer_sdp, fanout, node, principal, still_allowed)
        finally:
            self._pending[principal] -= 1
            if not self._pending[principal]:
                del self._pending[principal]

    def principal_sessions(self, principal: str) -> int:
        """Sessions held or being answered for `principal`."""
        held = sum(1 for s in self.sessions.values() if s.principal == principal)
        return held + self._pending.get(principal, 0)

    async def _create(
        self,
        offer_sdp: str,
        fanout: PacketFanout,
        node: str | None,
        principal: str,
        still_allowed: Callable[[], bool] | None,
    ) -> tuple[str, str]:
        if "m=video" not in offer_sdp:
            raise WhepError(400, "the SDP offer has no video section")
        try:
            offer = RTCSessionDescription(sdp=offer_sdp, type="offer")
        except ValueError as error:
            raise WhepError(400, f"bad SDP offer: {error}") from None
        loop = self.loop = asyncio.get_running_loop()
        pc = RTCPeerConnection(self._configuration())
        session = WhepSession(
            secrets.token_urlsafe(12), fanout, fanout.subscribe_async(loop), pc, node=node or self.node,
            principal=principal, still_allowed=still_allowed,
        )  # fmt: skip
        try:
            # The transceiver exists before the offer is applied: aiortc negotiates codecs while applying
            # it, so that is when "H.264 only" must already be set (these packets are H.264).
            h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/h264"]
            transceiver = pc.addTransceiver(EncodedVideoTrack(session), direction="sendonly")
            transceiver.setCodecPreferences(h264)
            session.sender = transceiver.sender
            await pc.setRemoteDescription(offer)
            answer_as_dtls_server(pc)  # setup:passive: the viewer's own cipher list decides (GStreamer: RSA)
            self._wire(session)
            await pc.setLocalDescription(await pc.createAnswer())
        except WhepError:
            await self._close(session)
            raise
        except Exception as error:  # aiortc fails on bad SDP in many ways (incl. AttributeError)
            await self._close(session)
            raise WhepError(400, f"cannot answer this SDP offer: {error}") from None
        if "H264" not in pc.localDescription.sdp:
            await self._close(session)
            raise WhepError(400, "the viewer does not accept H.264 video")
        self.sessions[session.id] = session
        log.info("viewer %s joined %s (%d viewers)", session.id, fanout.stream, len(self.sessions))
        return session.id, pc.localDescription.sdp

    def _wire(self, session: WhepSession) -> None:
        pc = session.pc

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != DATA_CHANNEL:
                return
            session.channel = channel
            channel.on("message", session.on_channel_message)
            session._shown_state = None  # (re)send the current state and timing reference on the new channel
            session._sent_epoch = None

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.delete(session.id)

        session._watch = asyncio.get_running_loop().create_task(
            session.watch_state(lambda: self.delete(session.id), self.recheck_s)
        )

    async def delete(self, session_id: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        await self._close(session)
        log.info("viewer %s left %s (%d viewers)", session.id, session.fanout.stream, len(self.sessions))
        return True

    async def _close(self, session: WhepSession) -> None:
        session.reader.close()
        try:
            # pc.close() releases the ICE transport's UDP sockets: it must finish even when this runs in the
            # session's own watch task (a viewer that never connected), which cancelling first would abort.
            await asyncio.shield(session.pc.close())
        finally:
            watch = session._watch
            if watch is not None and watch is not asyncio.current_task():
                watch.cancel()

    async def close_all(self) -> None:
        for session_id in list(self.sessions):
            await self.delete(session_id)

    def viewers(self, fanout: PacketFanout) -> int:
        return sum(1 for s in self.sessions.values() if s.fanout is fanout)
