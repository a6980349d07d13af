"""H.264 passthrough: a source that already sends H.264 a browser plays is forwarded as is, packet for packet.

The cheapest correct live video: no BGR copy, no drawing, no encoder. The boxes travel beside each frame as
metadata (`EncodedPacket.boxes`) for the page to draw over the video, keyed by the frame's capture time; the
frame's 90 kHz time comes from the same capture time (`PtsClock`), so the RTP timestamp a page sees for a shown
frame maps back to it exactly.

What can be forwarded: H.264, 4:2:0 8-bit (yuv420p / yuvj420p), every frame decoded from its own packet in
order (no B-frames: WebRTC has no reordering). Anything else is refused with the reason, and the stream falls
back to the encoder (boxes burned in) until the source reconnects. A forwarded stream cannot make a keyframe on
request: a viewer joining (or one that fell behind) waits for the source's next keyframe (its GOP), so a source
whose keyframes come further apart than `video.live.max_keyframe_interval_s` is refused too.
"""

from __future__ import annotations

import logging
from typing import Any

import av

from edge.frame import Frame
from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import EncodedPacket, PtsClock

log = logging.getLogger("edge.video")

PLAYABLE_PIXEL_FORMATS = ("yuv420p", "yuvj420p")
START_CODE = b"\x00\x00\x01"
IDR, SPS, PPS = 5, 7, 8


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, without their start codes."""
    units, start = [], data.find(START_CODE)
    while start != -1:
        begin = start + len(START_CODE)
        end = data.find(START_CODE, begin)
        unit = data[begin:] if end == -1 else data[begin:end]
        units.append(unit.rstrip(b"\x00") if end != -1 else unit)  # the 4-byte start code's leading zero
        start = end
    return [unit for unit in units if unit]


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


class H264Passthrough:
    """Forwards one stream's source packets to its viewers' fan-out, with each frame's boxes."""

    def __init__(
        self, stream: str, fanout: PacketFanout, clock: PtsClock, max_keyframe_interval_s: float = 4.0
    ) -> None:
        self.stream = stream
        self.fanout = fanout
        self.clock = clock
        self.max_keyframe_interval_s = max_keyframe_interval_s
        self._since: float | None = None  # source time (s) of the last keyframe, or of the first frame before one
        self.refused: str | None = None  # why this source cannot be forwarded (until it reconnects)
        self.frames_forwarded = 0
        self._source: Any = None  # the av stream the current parameters were read from
        self._to_annex_b: av.bitstream.BitStreamFilterContext | None = None
        self._parameter_sets = b""  # SPS + PPS (Annex B), put before keyframes that lack them
        self._last_source_pts: int | None = None

    @property
    def active(self) -> bool:
        return self.refused is None

    def reset(self) -> None:
        """The source reconnected (it may now send something else): try forwarding again."""
        self.refused = None
        self._source = self._to_annex_b = None
        self._parameter_sets = b""
        self._last_source_pts = None
        self._since = None

    def forward(self, frame: Frame, boxes: bytes) -> bool:
        """Publish the frame's own packet with its boxes; False (and `refused` says why) when it cannot be."""
        packet = frame.source_packet
        if packet is None:
            return self._refuse("its frames are not decoded one per packet (reordered frames or a local camera)")
        if packet.stream is not self._source and not self._open(packet.stream):
            return False
        if packet.pts is not None:
            if self._last_source_pts is not None and packet.pts <= self._last_source_pts:
                return self._refuse("its frames arrive out of presentation order (B-frames)")
            self._last_source_pts = packet.pts
        data = self._annex_b(packet)
        if not data:
            return True  # nothing to show (e.g. a filter still waiting): not a reason to give up
        types = {nal_type(unit) for unit in nal_units(data)}
        keyframe = IDR in types  # the bytes decide (a demuxer's key flag may be missing, e.g. over RTP)
        now = float(packet.pts * packet.time_base) if packet.pts is not None else frame.capture_time
        if keyframe or self._since is None:
            self._since = now
        elif now - self._since > self.max_keyframe_interval_s:
            return self._refuse(
                f"its keyframes come more than {self.max_keyframe_interval_s:g} s apart "
                "(video.live.max_keyframe_interval_s): a joining viewer would wait that long"
            )
        if keyframe:
            data = self._with_parameter_sets(data, SPS in types)
        self.fanout.publish(
            EncodedPacket(
                self.stream, data, self.clock(frame.capture_time), keyframe, frame.capture_time, frame.width,
                frame.height, boxes,
            )
        )  # fmt: skip
        self.frames_forwarded += 1
        return True

    def _open(self, source: Any) -> bool:
        context = source.codec_context
        if context.name != "h264":
            return self._refuse(f"the source sends {context.name}, not H.264")
        if context.pix_fmt not in PLAYABLE_PIXEL_FORMATS:
            return self._refuse(f"its pictures are {context.pix_fmt}, not 4:2:0 8-bit a browser decodes")
        extradata = bytes(context.extradata or b"")
        self._to_annex_b = None
        self._parameter_sets = b""
        if extradata[:1] == b"\x01":  # avcC (MP4, MKV): length-prefixed NAL units, converted by FFmpeg's filter
            self._to_annex_b = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", source)
        else:
            self._remember_parameter_sets(extradata)
        self._source = source
        log.info("stream %s: forwarding the source's H.264 unchanged (boxes drawn by the page)", self.stream)
        return True

    def _annex_b(self, packet: av.Packet) -> bytes:
        if self._to_annex_b is None:
            return bytes(packet)
        return b"".join(bytes(out) for out in self._to_annex_b.filter(packet))

    def _remember_parameter_sets(self, data: bytes) -> None:
        units = [unit for unit in nal_units(data) if nal_type(unit) in (SPS, PPS)]
        if any(nal_type(unit) == SPS for unit in units):
            self._parameter_sets = b"".join(b"\x00\x00\x00\x01" + unit for unit in units)

    def _with_parameter_sets(self, data: bytes, has_sps: bool) -> bytes:
        """A keyframe a viewer can start at: SPS and PPS in band (RTSP cameras often send them only in the SDP)."""
        if has_sps:
            self._remember_parameter_sets(data)
            return data
        return self._parameter_sets + data

    def _refuse(self, reason: str) -> bool:
        if self.refused is None:
            log.info("stream %s: H.264 passthrough not possible, %s: encoding it with the boxes burned in",
                     self.stream, reason)  # fmt: skip
        self.refused = reason
        return False
