"""A browser-like WHEP viewer's side of the exchange (a real aiortc peer connection), for WHEP tests."""

from __future__ import annotations

from aiortc import RTCPeerConnection

SDP = {"Content-Type": "application/sdp"}


async def client_offer() -> tuple[RTCPeerConnection, str]:
    """A real browser-like WHEP offer: receive-only video plus the `smarteye` data channel."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("smarteye")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp
