"""One encoded stream handed to many consumers: each gets the same packets through its own bounded queue.

A consumer that falls behind loses what it had queued and resumes at the next keyframe (and asks for
one), so it never holds up the encoder or the other consumers, and never decodes a broken picture.
A consumer always starts at a keyframe; joining asks the producer for one so nobody waits a whole GOP.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from smarteye.media.packet import EncodedPacket
from smarteye.wire.messages import VideoState

log = logging.getLogger("edge.video")

DEFAULT_QUEUE = 30  # packets; a few seconds at detection rates, ~1 s at 30 fps
STALE_AFTER_S = 2.0  # no packet for this long: the stream is shown as down


@dataclass(slots=True)
class FanoutStatus:
    stream: str
    state: VideoState
    reason: str | None
    width: int | None
    height: int | None
    fps: float
    last_packet_time: float | None
    consumers: int
    packets: int


class PacketQueue:
    """A consumer's bounded queue; thread-safe `offer`, `wake` tells the consumer something arrived."""

    def __init__(self, fanout: PacketFanout, maxsize: int, wake: Callable[[], None]) -> None:
        self.fanout = fanout
        self.maxsize = maxsize
        self._wake = wake
        self._items: collections.deque[EncodedPacket] = collections.deque()
        self._lock = threading.Lock()
        self._need_keyframe = True
        self._keyframe_wanted = False
        self.dropped = 0

    def offer(self, packet: EncodedPacket) -> None:
        with self._lock:
            if len(self._items) >= self.maxsize:  # fell behind: drop the backlog, resume at a keyframe
                self.dropped += len(self._items)
                self._items.clear()
                self._need_keyframe = self._keyframe_wanted = True  # asked for once the consumer reads again
            if self._need_keyframe and not packet.keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
            was_empty = not self._items
            self._items.append(packet)
        if was_empty:  # a consumer only ever waits on an empty queue
            self._wake()

    def pop(self) -> EncodedPacket | None:
        with self._lock:
            packet = self._items.popleft() if self._items else None
            ask, self._keyframe_wanted = self._keyframe_wanted, False
        if ask:
            self.fanout.request_keyframe()
        return packet

    def skip_to_latest_keyframe(self) -> None:
        """Drop what queued up while the consumer was not yet reading (e.g. a viewer's ICE and DTLS set-up),
        so it starts at the newest picture instead of seconds behind."""
        with self._lock:
            keyframes = [i for i, packet in enumerate(self._items) if packet.keyframe]
            if keyframes:
                for _ in range(keyframes[-1]):
                    self._items.popleft()
                    self.dropped += 1
            else:
                self.dropped += len(self._items)
                self._items.clear()
                self._need_keyframe = self._keyframe_wanted = True

    def __len__(self) -> int:
        return len(self._items)


class AsyncPacketReader:
    """A consumer on an asyncio loop (a WebRTC viewer, the uplink); packets may come from any thread."""

    def __init__(self, fanout: PacketFanout, loop: asyncio.AbstractEventLoop, maxsize: int = DEFAULT_QUEUE) -> None:
        self._loop = loop
        self._ready = asyncio.Event()
        self.queue = PacketQueue(fanout, maxsize, self._wake)
        self.fanout = fanout

    def _wake(self) -> None:
        self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> EncodedPacket:
        while True:
            packet = self.queue.pop()
            if packet is not None:
                return packet
            self._ready.clear()
            if len(self.queue) == 0:
                await self._ready.wait()

    def close(self) -> None:
        self.fanout.unsubscribe(self.queue)


class ThreadPacketReader:
    """A consumer on its own thread (the MPEG-TS muxer)."""

    def __init__(self, fanout: PacketFanout, maxsize: int = DEFAULT_QUEUE) -> None:
        self._ready = threading.Event()
        self.queue = PacketQueue(fanout, maxsize, self._ready.set)
        self.fanout = fanout

    def get(self, timeout: float) -> EncodedPacket | None:
        packet = self.queue.pop()
        if packet is None:
            self._ready.clear()
            if len(self.queue) == 0:
                self._ready.wait(timeout)
            packet = self.queue.pop()
        return packet

    def close(self) -> None:
        self.fanout.unsubscribe(self.queue)


class PacketFanout:
    """The encoded packets of one stream, and who consumes them."""

    def __init__(self, stream: str, request_keyframe: Callable[[], None] = lambda: None) -> None:
        self.stream = stream
        self.keyframe_requester = request_keyframe  # the encoder, or the uplink to it
        self._consumers: tuple[PacketQueue, ...] = ()
        self._lock = threading.Lock()
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self.packets = 0
        self.width: int | None = None
        self.height: int | None = None
        self.last_packet_time: float | None = None  # monotonic
        self.last_capture_time: float | None = None
        self._state = VideoState.WAITING
        self._reason: str | None = None

    # -- consumers -------------------------------------------------------------------------
    def subscribe_async(self, loop: asyncio.AbstractEventLoop, maxsize: int = DEFAULT_QUEUE) -> AsyncPacketReader:
        reader = AsyncPacketReader(self, loop, maxsize)
        self._add(reader.queue)
        return reader

    def subscribe_thread(self, maxsize: int = DEFAULT_QUEUE) -> ThreadPacketReader:
        reader = ThreadPacketReader(self, maxsize)
        self._add(reader.queue)
        return reader

    def _add(self, queue: PacketQueue) -> None:
        with self._lock:
            self._consumers = (*self._consumers, queue)
        self.request_keyframe()  # the newcomer starts at a keyframe: ask for one now

    def unsubscribe(self, queue: PacketQueue) -> None:
        with self._lock:
            self._consumers = tuple(c for c in self._consumers if c is not queue)

    @property
    def consumers(self) -> int:
        return len(self._consumers)

    def request_keyframe(self) -> None:
        self.keyframe_requester()

    # -- producer --------------------------------------------------------------------------
    def publish(self, packet: EncodedPacket) -> None:
        """Thread-safe: hand one packet to every consumer."""
        now = time.monotonic()
        self.packets += 1
        self._times.append(now)
        self.last_packet_time = now
        self.last_capture_time = packet.capture_time
        self.width, self.height = packet.width, packet.height
        self._state, self._reason = VideoState.LIVE, None
        for consumer in self._consumers:
            try:
                consumer.offer(packet)
            except Exception:  # e.g. its event loop is closed: it is gone, the others carry on
                log.exception("stream %s: a video consumer failed and is dropped", self.stream)
                self.unsubscribe(consumer)

    def set_down(self, reason: str | None) -> None:
        """The producer knows the source is gone (its reason is shown to viewers)."""
        self._state, self._reason = VideoState.DOWN, reason

    def status(self) -> FanoutStatus:
        now = time.monotonic()
        state, reason = self._state, self._reason
        if state is VideoState.LIVE and (self.last_packet_time is None or now - self.last_packet_time > STALE_AFTER_S):
            state, reason = VideoState.DOWN, f"no video for {now - (self.last_packet_time or now):.0f} s"
        times = self._times
        recent = len(times) > 1 and now - times[-1] <= STALE_AFTER_S
        fps = (len(times) - 1) / (times[-1] - times[0]) if recent and times[-1] > times[0] else 0.0
        return FanoutStatus(
            self.stream, state, reason, self.width, self.height, round(fps, 2), self.last_packet_time,
            self.consumers, self.packets,
        )  # fmt: skip
