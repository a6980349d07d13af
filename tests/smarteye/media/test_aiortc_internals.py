"""The aiortc internals smarteye.media.aiortc_internals reads: still there (a failure names the attribute and
the aiortc version), still meaning what the WHEP timing reference and keyframe forwarding take them for (on
a real loopback WebRTC connection), degrading with one WARNING when gone, and pinned in pyproject.toml."""

from __future__ import annotations

import asyncio
import logging
import tomllib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from packaging.requirements import Requirement

from smarteye.media import aiortc_internals
from smarteye.media.aiortc_internals import (
    AIORTC_VERSION,
    INTERNALS,
    KEYFRAME_REQUEST,
    SENT_RTP_TIMESTAMP,
    TIMESTAMP_MAPPER,
    Internal,
    missing_internals,
    received_rtp_origin,
    sent_rtp_timestamp,
    take_keyframe_request,
)
from smarteye.media.packet import TIME_BASE

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_installed_aiortc_still_sets_every_internal_we_read() -> None:
    problems = missing_internals()
    assert not problems, (
        "aiortc internals read by smarteye/media/aiortc_internals.py changed:\n  "
        + "\n  ".join(problems)
        + f"\nAdapt that module to aiortc {AIORTC_VERSION} (and its pin in pyproject.toml), or keep the tested aiortc."
    )


def test_a_changed_internal_is_named_with_the_aiortc_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: a renamed attribute and a vanished method are both reported by name."""
    renamed = Internal("RTCRtpSender", "__last_rtp_timestamp", "_run_rtp", "no latency figure")
    vanished = Internal("RTCRtpSender", "__rtp_timestamp", "_send_rtp_frame", "no latency figure")
    monkeypatch.setattr(aiortc_internals, "INTERNALS", (renamed, vanished))
    assert missing_internals() == [
        f"aiortc {AIORTC_VERSION}: RTCRtpSender._run_rtp no longer sets RTCRtpSender.__last_rtp_timestamp",
        f"aiortc {AIORTC_VERSION} has no RTCRtpSender._send_rtp_frame, which set RTCRtpSender.__rtp_timestamp",
    ]


def test_installed_aiortc_is_inside_the_pinned_tested_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (pin,) = [Requirement(d) for d in dependencies if Requirement(d).name == "aiortc"]
    assert any(spec.operator == "<" for spec in pin.specifier), f"aiortc is not pinned below a version: {pin}"
    assert pin.specifier.contains(AIORTC_VERSION), f"installed aiortc {AIORTC_VERSION} is outside the pin {pin}"


# ------------------------------------------------------------------------------ on a real connection

_FRAMES = 30  # a keyframe then P-frames, sent in a loop


def _h264_packets() -> list[bytes]:
    """Real 64×64 H.264 access units (Annex B), as the stream encoder makes them."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width = codec.height = 64
    codec.pix_fmt = "yuv420p"
    codec.time_base = TIME_BASE
    codec.framerate = Fraction(30)
    codec.gop_size = _FRAMES
    codec.max_b_frames = 0
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    out = []
    for i in range(_FRAMES):
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 8 * i, np.uint8), format="rgb24")
        frame.pts = i * 3000
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    assert len(out) == _FRAMES
    return out


class _PacketTrack(MediaStreamTrack):
    """Pre-encoded packets with pts gaps that all differ (3000 + n), so a pts difference names the frames.
    As WhepSession does, it reads the sender's last RTP timestamp as each next frame leaves."""

    kind = "video"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets
        self.sender: RTCRtpSender | None = None
        self.pts: list[int] = []
        self.sent_before: list[int | None] = []  # sent_rtp_timestamp() when frame n left: frame n-1's
        self.keyframe_requests = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        await asyncio.sleep(1 / 60)
        n = len(self.pts)
        assert self.sender is not None
        self.sent_before.append(sent_rtp_timestamp(self.sender))
        self.keyframe_requests += take_keyframe_request(self.sender)
        self.pts.append(self.pts[-1] + 3000 + n if n else 0)
        packet = av.Packet(self.packets[n % len(self.packets)])
        packet.pts = packet.dts = self.pts[-1]
        packet.time_base = TIME_BASE
        return packet


async def _until(condition: object, what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_sender_timestamp_and_receiver_origin_map_frames_and_a_pli_raises_one_keyframe_request() -> None:
    """The WHEP timing reference is (sender's previous-frame RTP timestamp − previous pts) + pts; a viewer
    maps a frame back with (receiver origin + frame pts). Both must give every received frame's RTP
    timestamp, and a viewer's PLI must surface once as a keyframe request."""
    track = _PacketTrack(_h264_packets())
    received: list[int] = []
    consumers: list[asyncio.Future[None]] = []

    async def main() -> tuple[list[int], int | None, int]:
        sender_pc, viewer_pc = RTCPeerConnection(), RTCPeerConnection()
        try:
            transceiver = sender_pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/h264"]
            )
            track.sender = transceiver.sender

            @viewer_pc.on("track")
            def on_track(remote: MediaStreamTrack) -> None:
                async def consume() -> None:
                    with pytest.raises(MediaStreamError):
                        while True:
                            frame = await remote.recv()
                            received.append(frame.pts)

                consumers.append(asyncio.ensure_future(consume()))

            await sender_pc.setLocalDescription(await sender_pc.createOffer())
            await viewer_pc.setRemoteDescription(sender_pc.localDescription)
            await viewer_pc.setLocalDescription(await viewer_pc.createAnswer())
            await sender_pc.setRemoteDescription(viewer_pc.localDescription)
            await _until(lambda: len(received) >= 20, "20 decoded frames at the viewer")
            receiver: RTCRtpReceiver = viewer_pc.getReceivers()[0]
            origin = received_rtp_origin(receiver)

            requests_before = track.keyframe_requests
            (source,) = receiver.getSynchronizationSources()
            send_pli = getattr(receiver, "_send_rtcp_pli", None)  # what aiortc calls on a decoder error
            assert send_pli is not None, f"aiortc {AIORTC_VERSION}: this test cannot send a PLI any more"
            await send_pli(source.source)
            await _until(lambda: track.keyframe_requests > requests_before, "the PLI as a keyframe request")
            await asyncio.sleep(0.1)
            return list(received), origin, track.keyframe_requests - requests_before
        finally:
            await viewer_pc.close()
            await sender_pc.close()

    frames, origin, requests = asyncio.run(main())
    assert requests == 1, "one PLI must give exactly one keyframe request (the flag is read and cleared)"
    assert origin is not None, f"aiortc {AIORTC_VERSION}: {TIMESTAMP_MAPPER} gave no origin after frames arrived"

    pts, sent_before = track.pts, track.sent_before
    origins = {(sent - pts[n - 1]) % 2**32 for n, sent in enumerate(sent_before) if n >= 2 and sent is not None}
    assert len(origins) == 1, (
        f"aiortc {AIORTC_VERSION}: {SENT_RTP_TIMESTAMP} is not the previous frame's RTP timestamp "
        f"(sent timestamp − previous pts varies: {sorted(origins)[:5]})"
    )
    (sender_origin,) = origins
    sent_rtp = {(sender_origin + p) % 2**32 for p in pts}
    viewer_rtp = [(origin + p) % 2**32 for p in frames]
    assert len(viewer_rtp) >= 20
    assert all(rtp in sent_rtp for rtp in viewer_rtp), (
        f"aiortc {AIORTC_VERSION}: the receiver's origin ({TIMESTAMP_MAPPER}) and the sender's timestamp "
        f"({SENT_RTP_TIMESTAMP}) no longer agree on the frames' RTP timestamps"
    )


# ------------------------------------------------------------------------------ degrading at run time


@pytest.mark.parametrize("internal", [SENT_RTP_TIMESTAMP, KEYFRAME_REQUEST])
def test_without_an_internal_the_feature_degrades_with_one_warning(
    internal: Internal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As an aiortc that dropped the attribute would behave: no value, one WARNING naming it, no exception."""
    monkeypatch.setattr(aiortc_internals, "_warned", set())

    async def senders() -> list[RTCRtpSender]:
        pc = RTCPeerConnection()
        try:
            return [pc.addTransceiver("video", direction="sendonly").sender for _ in range(2)]
        finally:
            await pc.close()

    caplog.set_level(logging.WARNING, logger=aiortc_internals.__name__)
    for sender in asyncio.run(senders()):
        delattr(sender, internal.attribute)
        assert sent_rtp_timestamp(sender) is None if internal is SENT_RTP_TIMESTAMP else True
        assert take_keyframe_request(sender) is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"aiortc {AIORTC_VERSION} has no {internal}: {internal.consequence}"]
    assert internal in INTERNALS


def test_a_keyframe_request_is_taken_once() -> None:
    async def sender() -> RTCRtpSender:
        pc = RTCPeerConnection()
        try:
            return pc.addTransceiver("video", direction="sendonly").sender
        finally:
            await pc.close()

    rtp_sender = asyncio.run(sender())
    assert take_keyframe_request(rtp_sender) is False and sent_rtp_timestamp(rtp_sender) == 0
    rtp_sender._send_keyframe()  # what aiortc does on a viewer's PLI/FIR
    assert take_keyframe_request(rtp_sender) is True
    assert take_keyframe_request(rtp_sender) is False


def test_an_actpass_offer_is_answered_as_dtls_server_and_an_explicit_role_is_kept() -> None:
    """aiortc alone answers `setup:active` (the client, ECDSA-only suites: webrtcbin fails); the WHEP server
    answers `setup:passive` to `actpass`, and keeps aiortc's choice when the offer fixed the role."""
    from smarteye.media.fanout import PacketFanout
    from smarteye.media.webrtc import WhepServer
    from tests.support.whep_viewer import client_offer

    server = WhepServer()
    fanout = PacketFanout("cam")

    async def main() -> tuple[str, str]:
        pc, offer = await client_offer()
        try:
            assert "a=setup:actpass" in offer
            _, actpass_answer = await server.create(offer, fanout)
            _, passive_answer = await server.create(offer.replace("a=setup:actpass", "a=setup:passive"), fanout)
            return actpass_answer, passive_answer
        finally:
            await server.close_all()
            await pc.close()

    actpass_answer, passive_answer = asyncio.run(main())
    assert "a=setup:passive" in actpass_answer and "a=setup:active" not in actpass_answer
    assert "a=setup:active" in passive_answer and "a=setup:passive" not in passive_answer
