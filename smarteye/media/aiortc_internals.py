"""The private parts of aiortc this project reads, all here (tested with aiortc 1.16; pyproject.toml pins
`aiortc>=1.16,<1.17`). aiortc has no public API for any of them:

- `RTCRtpSender.__rtp_timestamp`, the RTP timestamp of the last frame the sender sent (set in `_run_rtp`).
  The WHEP server pairs it with that frame's pts once per viewer, to tell the viewer how RTP timestamps
  map to capture times: without it, viewers get no latency figure.
- `RTCRtpSender.__force_keyframe`, set by `_send_keyframe` when the viewer sends a PLI/FIR. aiortc only
  honours it when it encodes frames itself; our frames are encoded once upstream, so the server reads and
  clears it and asks the stream's encoder. Without it, a viewer that lost packets waits for the next
  periodic keyframe.
- `RTCRtpReceiver.__timestamp_mapper._origin`, the first RTP timestamp a receiver got: aiortc hands out
  frames with pts counted from it. The Python WHEP viewer (`smarteye.sim.whep_viewer`) adds it back to
  match frames to the server's timing reference.
- `RTCDtlsTransport._role` (set by `_set_role`): the DTLS role aiortc takes. Answering an `actpass` offer,
  aiortc always takes the client role (`setup:active`) and its client hello offers ECDSA suites only, so a
  peer whose certificate is RSA (GStreamer's webrtcbin) fails the handshake ("no shared cipher"). The WHEP
  server answers as the DTLS server (`setup:passive`, allowed by RFC 8842 §5.3) instead: then the viewer
  picks the suite from its own list. Without it, GStreamer viewers get no video.

If an aiortc release renames or drops them, tests/smarteye/media/test_aiortc_internals.py fails naming
the attribute and the version. At run time the features above degrade with one WARNING per attribute.
"""

from __future__ import annotations

import dis
import logging
from dataclasses import dataclass
from typing import Any

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, rtcdtlstransport, rtcrtpreceiver, rtcrtpsender

log = logging.getLogger(__name__)

AIORTC_VERSION: str = aiortc.__version__


@dataclass(frozen=True)
class Internal:
    """One private attribute of an aiortc class, and the method whose code assigns it."""

    owner: str  # aiortc class
    name: str  # as written in aiortc's source
    assigned_in: str  # method of owner
    consequence: str  # what degrades without it

    @property
    def attribute(self) -> str:
        """The name getattr needs (double-underscore names are mangled with the class name)."""
        return f"_{self.owner}{self.name}" if self.name.startswith("__") else self.name

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


SENT_RTP_TIMESTAMP = Internal("RTCRtpSender", "__rtp_timestamp", "_run_rtp", "viewers get no latency figure")
KEYFRAME_REQUEST = Internal(
    "RTCRtpSender", "__force_keyframe", "_send_keyframe", "viewers' PLI/FIR wait for the next periodic keyframe"
)
TIMESTAMP_MAPPER = Internal(
    "RTCRtpReceiver", "__timestamp_mapper", "__init__", "the Python WHEP viewer cannot measure latency"
)
MAPPER_ORIGIN = Internal("TimestampMapper", "_origin", "map", "the Python WHEP viewer cannot measure latency")
DTLS_ROLE = Internal("RTCDtlsTransport", "_role", "_set_role", "GStreamer (webrtcbin) viewers fail the DTLS handshake")
INTERNALS = (SENT_RTP_TIMESTAMP, KEYFRAME_REQUEST, TIMESTAMP_MAPPER, MAPPER_ORIGIN, DTLS_ROLE)

_MISSING = object()
_warned: set[Internal] = set()


def missing_internals() -> list[str]:
    """One line per internal the installed aiortc no longer assigns where it did (empty: all there); a
    static look at aiortc's code, so the test can name what changed without running a connection."""
    problems = []
    for internal in INTERNALS:
        owner = (
            getattr(rtcrtpsender, internal.owner, None)
            or getattr(rtcrtpreceiver, internal.owner, None)
            or getattr(rtcdtlstransport, internal.owner, None)
        )
        code = getattr(getattr(owner, internal.assigned_in, None), "__code__", None)
        where = f"{internal.owner}.{internal.assigned_in}"
        if code is None:
            problems.append(f"aiortc {AIORTC_VERSION} has no {where}, which set {internal}")
        elif not any(i.opname == "STORE_ATTR" and i.argval == internal.attribute for i in dis.get_instructions(code)):
            problems.append(f"aiortc {AIORTC_VERSION}: {where} no longer sets {internal}")
    return problems


def _degraded(internal: Internal) -> None:
    if internal not in _warned:
        _warned.add(internal)
        log.warning("aiortc %s has no %s: %s", AIORTC_VERSION, internal, internal.consequence)


def sent_rtp_timestamp(sender: RTCRtpSender) -> int | None:
    """RTP timestamp of the last frame the sender sent (0 before the first); None when aiortc hides it."""
    value = getattr(sender, SENT_RTP_TIMESTAMP.attribute, _MISSING)
    if value is _MISSING:
        _degraded(SENT_RTP_TIMESTAMP)
        return None
    return value  # type: ignore[return-value]


def take_keyframe_request(sender: RTCRtpSender) -> bool:
    """True once after the viewer asked for a keyframe (PLI/FIR), clearing the request."""
    requested = getattr(sender, KEYFRAME_REQUEST.attribute, _MISSING)
    if requested is _MISSING:
        _degraded(KEYFRAME_REQUEST)
        return False
    if not requested:
        return False
    setattr(sender, KEYFRAME_REQUEST.attribute, False)
    return True


def received_rtp_origin(receiver: RTCRtpReceiver) -> int | None:
    """The first RTP timestamp the receiver got, from which aiortc counts its frames' pts (None: none yet,
    or aiortc hides it). It moves back by 2**32 when timestamps wrap, so `(origin + pts) % 2**32` holds."""
    mapper = getattr(receiver, TIMESTAMP_MAPPER.attribute, _MISSING)
    if mapper is _MISSING:
        _degraded(TIMESTAMP_MAPPER)
        return None
    origin: Any = getattr(mapper, MAPPER_ORIGIN.attribute, _MISSING)
    if origin is _MISSING:
        _degraded(MAPPER_ORIGIN)
        return None
    return origin


def answer_as_dtls_server(pc: RTCPeerConnection) -> int:
    """Call between setRemoteDescription(offer) and createAnswer: when the offer left the DTLS role open
    (`actpass` everywhere), every DTLS transport becomes the server, so the answer says `setup:passive`.
    An offer that fixed the role (active/passive) is left to aiortc. Returns how many transports changed."""
    offer = pc.remoteDescription
    setups = {line.strip()[len("a=setup:") :] for line in offer.sdp.splitlines() if line.startswith("a=setup:")}
    if setups != {"actpass"}:
        return 0
    transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    changed = 0
    for transport in {id(t): t for t in transports if t is not None}.values():
        role = getattr(transport, DTLS_ROLE.attribute, _MISSING)
        setter = getattr(transport, DTLS_ROLE.assigned_in, None)
        if role is _MISSING or setter is None:
            _degraded(DTLS_ROLE)
            return changed
        if role == "auto":
            setter("server")
            changed += 1
    return changed
