"""Alert clips: the seconds of a stream's own H.264 before and after an alert starts, as an MP4 a browser plays.

No second encoder. A stream's recorder is one more consumer of its packet fan-out while the stream's rules want
clips — and being a consumer is what keeps the stream's encoder encoding when nobody watches (see
`LiveVideo.submit`). It keeps a ring of whole GOPs (each starts at a keyframe), just long enough to reach back
`pre_s` from the newest packet, and bounded in seconds and bytes whatever the keyframe interval.

When an alert starts, the sink asks for a clip (`request`); nothing waits on the pipeline. The recorder's own
thread takes the ring from the latest keyframe at or before `start - pre_s` (after a pause in the video: from the
keyframe that ended it, rather than seconds of one stale picture), keeps adding the packets that arrive
until `start + post_s`, remuxes them to MP4 with PyAV (codec copy, `+faststart` so a browser can play it while it
downloads; timestamps are the packets' own pts) and hands the MP4 to `on_clip`. Every clip is bounded (at most
`max_pending` being recorded per stream, at most `max_clip_bytes`); a clip that cannot be made (no keyframe in
range, no video) is logged and skipped, and one that stalls (the stream went down) is cut short at what arrived.
"""

from __future__ import annotations

import collections
import io
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av

from smarteye.media.fanout import PacketFanout, ThreadPacketReader
from smarteye.media.packet import TIME_BASE, EncodedPacket
from smarteye.wire.messages import Alert, AlertClip
from smarteye.wire.rules import ClipSettings

log = logging.getLogger("edge.video.clips")

READER_QUEUE = 600  # packets: the recorder's fan-out queue; a remux (a few ms) never makes it fall behind
REQUEST_SLACK_S = 2.0  # the ring reaches this much further back than pre_s: a request is taken a moment late


@dataclass(frozen=True, slots=True)
class ClipLimits:
    """The bounds of one stream's recorder."""

    max_pending: int = 4
    """Clips being recorded at once; a further alert gets no clip (logged)."""
    max_clip_bytes: int = 16 * 1024 * 1024
    """A clip is cut short at this size (10 s at the encoder's default 2.5 Mbit/s cap is ~3 MB)."""
    max_ring_bytes: int = 32 * 1024 * 1024
    max_ring_s: float = 60.0
    """The ring's hard bounds, whatever the keyframe interval (pre_s is at most 30 s)."""
    stall_s: float = 5.0
    """A clip still waiting for its last packet this long after `post_s` has passed is cut short."""


class ClipError(ValueError):
    """Packets that cannot become a clip (says why)."""


def remux_mp4(packets: Sequence[EncodedPacket]) -> bytes:
    """The packets, as they are, in an MP4 (codec copy); they must start at a keyframe and share one size.

    Time starts at 0 on the first packet; each sample lasts until the next one (the last as long as the one
    before it), so the clip's duration is the span of its capture.
    """
    if not packets or not packets[0].keyframe:
        raise ClipError("a clip must start at a keyframe")
    first = packets[0]
    if any((p.width, p.height) != (first.width, first.height) for p in packets):
        raise ClipError("a clip's packets must share one picture size")
    with tempfile.TemporaryDirectory(prefix="smarteye-clip-") as folder:
        path = Path(folder) / "clip.mp4"  # +faststart reopens the file by name to move the index to the front
        _write_mp4(path, packets)
        return path.read_bytes()


def _write_mp4(path: Path, packets: Sequence[EncodedPacket]) -> None:
    first = packets[0]
    # The output stream copies the parameters FFmpeg's own H.264 parser reads from the first keyframe's SPS/PPS
    # (size, profile, the avcC the MP4 needs). `add_stream("h264")` would open a libx264 encoder instead, whose
    # default (High profile) headers would then describe a stream it never made.
    with (
        av.open(io.BytesIO(first.data), format="h264") as source,
        av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container,
    ):
        stream = container.add_stream_from_template(source.streams.video[0], opaque=True)
        stream.time_base = TIME_BASE
        last_duration = 0
        for index, packet in enumerate(packets):
            following = packets[index + 1].pts if index + 1 < len(packets) else None
            duration = following - packet.pts if following is not None else last_duration
            out_packet = av.Packet(packet.data)
            out_packet.pts = out_packet.dts = packet.pts - first.pts
            out_packet.duration = max(duration, 0)
            out_packet.time_base = TIME_BASE
            out_packet.is_keyframe = packet.keyframe
            out_packet.stream = stream
            container.mux(out_packet)
            last_duration = duration


class PacketRing:
    """The stream's recent packets as whole GOPs, oldest first; never starts mid-GOP."""

    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        self.max_bytes, self.max_seconds = max_bytes, max_seconds
        self.gops: collections.deque[list[EncodedPacket]] = collections.deque()
        self.bytes = 0
        self.dropped = 0  # packets not kept: before the first keyframe, or their GOP outgrew the bounds

    def add(self, packet: EncodedPacket, keep_s: float) -> None:
        """Append a packet; then drop what an alert now would not need (older than the keyframe at or before
        `newest - keep_s`) and whatever breaks the bounds. A GOP that alone breaks them is dropped whole."""
        last = self.gops[-1][-1] if self.gops else None
        if last is not None and (last.width, last.height) != (packet.width, packet.height):
            self.clear()  # a new picture size starts a new stream (and the encoder restarts with a keyframe)
        if packet.keyframe:
            self.gops.append([packet])
        elif self.gops:
            self.gops[-1].append(packet)
        else:
            self.dropped += 1
            return
        self.bytes += len(packet.data)
        newest = packet.capture_time
        while len(self.gops) > 1 and self.gops[1][0].capture_time <= newest - keep_s:
            self._drop_oldest()
        while self.gops and (self.bytes > self.max_bytes or newest - self.gops[0][0].capture_time > self.max_seconds):
            self._drop_oldest()

    def since(self, start: float) -> list[EncodedPacket]:
        """The packets from the latest keyframe at or before `start` (or from the oldest one kept). A GOP that
        ended before `start` (the video paused: the source stalled, detection warmed up) only holds stale
        pictures: the packets then begin at the keyframe after the pause."""
        gops = list(self.gops)
        chosen = 0
        for index, gop in enumerate(gops):
            if gop[0].capture_time <= start:
                chosen = index
        if gops and gops[chosen][-1].capture_time < start and chosen + 1 < len(gops):
            chosen += 1
        return [packet for gop in gops[chosen:] for packet in gop]

    def _drop_oldest(self) -> None:
        gop = self.gops.popleft()
        self.bytes -= sum(len(p.data) for p in gop)
        self.dropped += len(gop)

    def clear(self) -> None:
        self.dropped += sum(len(g) for g in self.gops)
        self.gops.clear()
        self.bytes = 0

    @property
    def seconds(self) -> float:
        """Capture time spanned by what is kept."""
        return self.gops[-1][-1].capture_time - self.gops[0][0].capture_time if self.gops else 0.0

    def __len__(self) -> int:
        return sum(len(g) for g in self.gops)


@dataclass(slots=True)
class _Clip:
    """One clip being recorded."""

    alert: Alert
    first_time: float  # start - pre_s: the clip begins at the keyframe at or before it
    end_time: float  # start + post_s: the clip is complete once a packet this late arrived
    deadline: float  # monotonic: past it, the clip is cut short at what it has
    packets: list[EncodedPacket] = field(default_factory=list)
    bytes: int = 0


def _until(packets: list[EncodedPacket], end_time: float) -> list[EncodedPacket]:
    """The packets up to the first one captured at or after `end_time` (included)."""
    for index, packet in enumerate(packets):
        if packet.capture_time >= end_time:
            return packets[: index + 1]
    return packets


ClipHandler = Callable[[Alert, bytes, AlertClip], None]


class ClipRecorder:
    """One stream's clips: a fan-out consumer while wanted, a ring of GOPs, and the clips being recorded.

    `want` and `request` are called from the pipeline (they only note what is asked); the recorder's thread does
    the rest and calls `on_clip(start_alert, mp4, clip)` for every clip made. `outcomes` counts made, shortened
    and skipped clips (`on_outcome` hears each, for the metrics).
    """

    def __init__(
        self,
        fanout: PacketFanout,
        on_clip: ClipHandler,
        limits: ClipLimits | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = fanout.stream
        self.fanout, self.on_clip, self.on_outcome = fanout, on_clip, on_outcome
        self.limits = limits or ClipLimits()
        self.ring = PacketRing(self.limits.max_ring_bytes, self.limits.max_ring_s)
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._settings: ClipSettings | None = None
        self._reader: ThreadPacketReader | None = None
        self._lock = threading.Lock()  # guards _reader, _settings, _requests and _active
        self._count_lock = threading.Lock()
        self._requests: collections.deque[_Clip] = collections.deque()
        self._active = 0  # clips requested and not yet finished (the max_pending bound)
        self._clips: list[_Clip] = []  # owned by the recorder's thread
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- from the pipeline -----------------------------------------------------------------
    def want(self, settings: ClipSettings | None) -> None:
        """What the stream's current rules ask for: clips with these settings, or none (then the recorder leaves
        the fan-out, and the encoder may idle again)."""
        with self._lock:
            if self._stop.is_set() or settings == self._settings:
                return
            self._settings = settings
            if settings is not None and self._reader is None:
                self._reader = self.fanout.subscribe_thread(READER_QUEUE)
                log.info("stream %s: recording %.0f s of video for alert clips", self.stream, settings.pre_s)
            elif settings is None and self._reader is not None:
                self._reader.close()
                self._reader = None
                log.info("stream %s: no alert clips wanted; video recording stopped", self.stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"clips-{self.stream}", daemon=True)
                self._thread.start()
        self._wake.set()

    def request(self, alert: Alert, pre_s: float, post_s: float) -> bool:
        """A clip for this `start` alert; False (and logged) when video is not recorded or too many clips are
        being recorded already."""
        refused = None
        with self._lock:
            if self._reader is None or self._stop.is_set():
                refused = "video is not being recorded"
            elif self._active >= self.limits.max_pending:
                refused = f"{self._active} clips are being recorded already"
            else:
                self._active += 1
                deadline = time.monotonic() + post_s + self.limits.stall_s
                self._requests.append(_Clip(alert, alert.start_time - pre_s, alert.start_time + post_s, deadline))
        if refused is not None:
            self._outcome("skipped")
            log.warning("stream %s: no clip for alert %s: %s", self.stream, alert.alert_id, refused)
            return False
        self._wake.set()
        return True

    @property
    def recording(self) -> bool:
        return self._reader is not None

    @property
    def active(self) -> int:
        return self._active

    def stop(self) -> None:
        """Leave the fan-out; clips being recorded are cut short at what they have and still delivered."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- the recorder's thread -------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a bug must not end the stream's clips for good
                log.exception("stream %s: alert clip recorder failed; carrying on", self.stream)
                time.sleep(0.25)
        self._take_requests()
        for clip in self._clips:
            self._finish(clip, "the node is stopping")
        self._clips.clear()

    def _step(self) -> None:
        with self._lock:
            reader, settings = self._reader, self._settings
        self._take_requests()
        if reader is None or settings is None:
            self.ring.clear()
            for clip in self._clips:
                self._finish(clip, "the stream's rules no longer want clips")
            self._clips.clear()
            self._wake.wait(0.25)
            self._wake.clear()
            return
        packet = reader.get(0.25)
        if packet is not None:
            self.ring.add(packet, settings.pre_s + REQUEST_SLACK_S)
            self._feed(packet)
        now = time.monotonic()
        for clip in [c for c in self._clips if now > c.deadline]:
            self._clips.remove(clip)
            self._finish(clip, f"no video for {self.limits.stall_s:.0f} s after its end")

    def _take_requests(self) -> None:
        while True:
            with self._lock:
                if not self._requests:
                    return
                clip = self._requests.popleft()
            clip.packets = _until(self.ring.since(clip.first_time), clip.end_time)
            clip.bytes = sum(len(p.data) for p in clip.packets)
            self._clips.append(clip)
            self._check(clip)

    def _feed(self, packet: EncodedPacket) -> None:
        """A new packet for every clip that still wants it."""
        for clip in list(self._clips):
            if not clip.packets:
                if not packet.keyframe:
                    continue  # an empty clip starts at a keyframe
            elif (packet.width, packet.height) != (clip.packets[0].width, clip.packets[0].height):
                self._clips.remove(clip)
                self._finish(clip, "the picture size changed")
                continue
            if clip.bytes + len(packet.data) > self.limits.max_clip_bytes:
                self._clips.remove(clip)
                self._finish(clip, f"it reached {self.limits.max_clip_bytes} bytes")
                continue
            clip.packets.append(packet)
            clip.bytes += len(packet.data)
            self._check(clip)

    def _check(self, clip: _Clip) -> None:
        """Finish a clip once it holds `post_s` of video after the start."""
        if clip.packets and clip.packets[-1].capture_time >= clip.end_time:
            self._clips.remove(clip)
            self._finish(clip, None)

    def _finish(self, clip: _Clip, short: str | None) -> None:
        """Cut, remux and hand over one clip (`short`: why it ends before `start + post_s`)."""
        alert_id = clip.alert.alert_id
        try:
            packets = clip.packets
            if not packets:
                self._outcome("skipped")
                log.warning("stream %s: no clip for alert %s: no keyframe in range (%s)", self.stream, alert_id,
                            short or "no video")  # fmt: skip
                return
            if packets[0].capture_time > clip.end_time:
                self._outcome("skipped")
                log.warning("stream %s: no clip for alert %s: no keyframe before its end", self.stream, alert_id)
                return
            try:
                mp4 = remux_mp4(packets)
            except (ClipError, av.FFmpegError) as error:
                self._outcome("skipped")
                log.warning("stream %s: no clip for alert %s: %s", self.stream, alert_id, error)
                return
            info = AlertClip(start_time=packets[0].capture_time, end_time=packets[-1].capture_time, bytes=len(mp4))
            if short is not None:
                self._outcome("shortened")
                log.info("stream %s: clip of alert %s cut short at %.1f s: %s", self.stream, alert_id,
                         info.end_time - info.start_time, short)  # fmt: skip
            else:
                self._outcome("made")
            try:
                self.on_clip(clip.alert, mp4, info)
            except Exception:
                log.exception("stream %s: the clip of alert %s could not be handed over", self.stream, alert_id)
        finally:
            with self._lock:
                self._active -= 1

    def _outcome(self, what: str) -> None:
        with self._count_lock:
            self.outcomes[what] += 1
        if self.on_outcome is not None:
            self.on_outcome(what)
