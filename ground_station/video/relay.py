"""The station's video relay: each edge node's uplink in, every browser out, never re-encoded.

One fan-out per (node, stream) receives the packets exactly as the edge encoded them; WHEP viewers
at the station subscribe to it. When a viewer joins (or loses packets) the keyframe request goes up
the uplink to that stream's encoder. Streams whose node is disconnected are shown as down and pick
up again when the node reconnects; the browsers' sessions stay open throughout.

Each node may relay at most `max_streams_per_node` streams (one node's token cannot take the slots of the
others), and the streams of a node that stays disconnected are freed once nobody watches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from smarteye.media.fanout import PacketFanout
from smarteye.media.packet import EncodedPacket, PacketFormatError
from smarteye.wire.messages import KeyframeRequest, VideoState, VideoStreamState
from smarteye.wire.names import NAME_RE

log = logging.getLogger("ground_station.video")

KEYFRAME_REQUEST_GAP_S = 0.25  # several viewers joining at once cost one keyframe
FREE_AFTER_S = 60.0  # a disconnected node's unwatched streams are forgotten after this long


@dataclass(slots=True)
class RelayStats:
    uplinks: int = 0
    packets: int = 0
    bad_messages: int = 0
    streams_freed: int = 0


class _Uplink:
    """A connected edge node: where keyframe requests for its streams go."""

    def __init__(self, node: str, websocket: WebSocket, loop: asyncio.AbstractEventLoop) -> None:
        self.node = node
        self.websocket = websocket
        self.loop = loop
        self.last_request: dict[str, float] = {}
        self.scheduled: set[str] = set()
        self.sending: set[asyncio.Task[None]] = set()

    def request_keyframe(self, stream: str) -> None:
        """Thread-safe. Requests within KEYFRAME_REQUEST_GAP_S of the last one are merged into one sent at
        the end of the gap (never dropped: the late viewer would wait a whole keyframe interval)."""
        self.loop.call_soon_threadsafe(self._request, stream)

    def _request(self, stream: str) -> None:
        if stream in self.scheduled:
            return
        wait = self.last_request.get(stream, 0.0) + KEYFRAME_REQUEST_GAP_S - time.monotonic()
        if wait > 0:
            self.scheduled.add(stream)
            self.loop.call_later(wait, self._send_now, stream)
        else:
            self._send_now(stream)

    def _send_now(self, stream: str) -> None:
        self.scheduled.discard(stream)
        self.last_request[stream] = time.monotonic()
        task = self.loop.create_task(self._send(KeyframeRequest(node=self.node, stream=stream).model_dump_json()))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, text: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.websocket.send_text(text)


class _PtsRebase:
    """Keeps a relayed stream's timestamps rising when its edge restarts (a new encoder counts from 0):
    viewers' sessions outlive the uplink, and a backward jump would stall their jitter buffers."""

    def __init__(self) -> None:
        self.offset = 0
        self.last = -1

    def __call__(self, packet: EncodedPacket) -> EncodedPacket:
        pts = packet.pts + self.offset
        if pts <= self.last:
            self.offset = self.last + 3000 - packet.pts  # resume ~33 ms after the last frame
            pts = packet.pts + self.offset
        self.last = pts
        return packet if pts == packet.pts else dataclasses.replace(packet, pts=pts, _av_packet=None)


class VideoRelay:
    def __init__(
        self, max_streams: int = 256, max_streams_per_node: int = 16, free_after_s: float = FREE_AFTER_S
    ) -> None:
        self.max_streams = max_streams
        self.max_streams_per_node = max_streams_per_node
        self.free_after_s = free_after_s
        self._freeing: dict[str, asyncio.Task[None]] = {}
        self.fanouts: dict[tuple[str, str], PacketFanout] = {}
        self._uplinks: dict[str, _Uplink] = {}
        self._rebase: dict[tuple[str, str], _PtsRebase] = {}
        self.stats = RelayStats()

    def fanout(self, node: str, stream: str) -> PacketFanout | None:
        return self.fanouts.get((node, stream))

    def _fanout_for(self, node: str, stream: str) -> PacketFanout | None:
        key = (node, stream)
        fanout = self.fanouts.get(key)
        if fanout is None:
            if (
                len(self.fanouts) >= self.max_streams
                or len(self._node_fanouts(node)) >= self.max_streams_per_node
                or not NAME_RE.fullmatch(stream)
            ):
                return None
            fanout = PacketFanout(stream, lambda: self._request_keyframe(node, stream))
            self.fanouts[key] = fanout
            log.info("video relay: new stream %s/%s", node, stream)
        return fanout

    def _request_keyframe(self, node: str, stream: str) -> None:
        uplink = self._uplinks.get(node)
        if uplink is not None:
            uplink.request_keyframe(stream)

    async def serve_uplink(self, websocket: WebSocket, node: str) -> None:
        """Receive one edge node's packets and state messages until it disconnects."""
        previous = self._uplinks.get(node)
        if previous is not None:  # the node reconnected before its old socket timed out: the new one wins
            with contextlib.suppress(Exception):
                await previous.websocket.close(code=4409, reason="replaced by a newer uplink")
        uplink = _Uplink(node, websocket, asyncio.get_running_loop())
        self._uplinks[node] = uplink
        self.stats.uplinks += 1
        log.info("video uplink from node %s connected", node)
        try:
            for fanout in self._node_fanouts(node):  # viewers already waiting: get them a keyframe
                if fanout.consumers:
                    uplink.request_keyframe(fanout.stream)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    self._packet(node, message["bytes"])
                elif message.get("text") is not None:
                    self._state(node, message["text"])
        finally:
            if self._uplinks.get(node) is uplink:
                del self._uplinks[node]
                for fanout in self._node_fanouts(node):
                    fanout.set_down("the edge node's video uplink is disconnected")
                if node not in self._freeing:
                    task = asyncio.get_running_loop().create_task(self._free_when_gone(node))
                    self._freeing[node] = task
                    task.add_done_callback(lambda _: self._freeing.pop(node, None))
            log.info("video uplink from node %s disconnected", node)

    async def _free_when_gone(self, node: str) -> None:
        """Forget the streams of a node that stayed disconnected, each once its last viewer has left (a
        viewer keeps its stream, shown as down, for when the node comes back)."""
        while True:
            await asyncio.sleep(self.free_after_s)
            if node in self._uplinks:
                return
            for key in [k for k, fanout in self.fanouts.items() if k[0] == node and not fanout.consumers]:
                del self.fanouts[key]
                self._rebase.pop(key, None)
                self.stats.streams_freed += 1
                log.info("video relay: stream %s/%s freed (node gone, no viewer)", *key)
            if not self._node_fanouts(node):
                return

    def _node_fanouts(self, node: str) -> list[PacketFanout]:
        return [fanout for (owner, _), fanout in self.fanouts.items() if owner == node]

    def _packet(self, node: str, data: bytes) -> None:
        try:
            packet = EncodedPacket.from_wire(data)
        except PacketFormatError as error:
            self._bad(node, str(error))
            return
        fanout = self._fanout_for(node, packet.stream)
        if fanout is None:
            self._bad(
                node, f"stream {packet.stream!r} refused (bad name, or more than {self.max_streams_per_node} "
                f"streams for this node or {self.max_streams} in all)",
            )  # fmt: skip
            return
        self.stats.packets += 1
        fanout.publish(self._rebase.setdefault((node, packet.stream), _PtsRebase())(packet))

    def _state(self, node: str, text: str) -> None:
        try:
            state = VideoStreamState.model_validate_json(text)
        except ValidationError as error:
            self._bad(node, f"not a video_state message: {error.errors()[0]['msg']}")
            return
        fanout = self._fanout_for(node, state.stream)
        if fanout is not None and state.state is VideoState.DOWN:
            fanout.set_down(state.reason)

    def _bad(self, node: str, problem: str) -> None:
        self.stats.bad_messages += 1
        log.warning("video uplink from node %s: %s", node, problem)

    def streams(self) -> list[dict[str, object]]:
        rows = []
        for (node, stream), fanout in sorted(self.fanouts.items()):
            status = fanout.status()
            rows.append({
                "node": node, "stream": stream, "state": status.state.value, "reason": status.reason,
                "width": status.width, "height": status.height, "fps": status.fps, "viewers": status.consumers,
                "uplink": node in self._uplinks, "whep": f"/api/whep/{node}/{stream}",
            })  # fmt: skip
        return rows
