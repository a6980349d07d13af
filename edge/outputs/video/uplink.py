"""The edge node's one uplink to the ground station: every stream's encoded packets over one WebSocket.

The edge dials out (drones and site cameras sit behind 5G NAT; the station is the reachable end).
Binary messages are packets (see packet.py); text messages are JSON: the edge sends its streams'
state changes (`video_state`), the station asks for keyframes (`keyframe`) when viewers join.
Each stream has its own bounded queue, so a slow link drops to the next keyframe instead of lagging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import quote

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from edge.config.video import UplinkConfig
from smarteye.config.urls import redact_url
from smarteye.media.fanout import PacketFanout
from smarteye.wire.messages import KeyframeRequest, VideoStreamState

log = logging.getLogger("edge.video.uplink")

UPLINK_QUEUE = 60  # packets per stream


class VideoUplink:
    def __init__(self, config: UplinkConfig, node: str, fanouts: dict[str, PacketFanout]) -> None:
        self.config = config
        self.node = node
        self.fanouts = fanouts
        self.connected = False
        self.connects = 0
        self.last_error: str | None = None
        self.packets_sent = 0
        self._states: dict[str, VideoStreamState] = {}
        self._connection: ClientConnection | None = None
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"{self.config.websocket_url}?node={quote(self.node)}"

    def state_changed(self, state: VideoStreamState) -> None:
        """On the video loop: remember a stream's state and tell the station now if connected."""
        self._states[state.stream] = state
        connection = self._connection
        if connection is not None:
            task = asyncio.get_running_loop().create_task(self._send_text(connection, state.model_dump_json()))
            self._sending.add(task)  # keep a reference until done (the loop only keeps weak ones)
            task.add_done_callback(self._sending.discard)

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.config.token}"},
                    open_timeout=10,
                    ping_interval=5,
                    ping_timeout=10,
                    max_size=1 << 20,
                    close_timeout=1,  # a dead link must not hold up the node's shutdown
                ) as connection:
                    self.connected, self.last_error, delay = True, None, 0.5
                    self.connects += 1
                    log.info("video uplink connected to %s", redact_url(self.config.url))
                    await self._serve(connection)
            except asyncio.CancelledError:
                raise
            except InvalidStatus as error:
                self.last_error = f"the ground station refused the uplink (HTTP {error.response.status_code})"
            except (OSError, WebSocketException, TimeoutError) as error:
                self.last_error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            except Exception as error:  # never let the uplink end for good: log, back off, reconnect
                log.exception("video uplink failed")
                self.last_error = f"{type(error).__name__}: {error}"
            finally:
                self.connected = False
                self._connection = None
            log.warning(
                "video uplink to %s: %s; retrying in %.1f s", redact_url(self.config.url), self.last_error, delay
            )
            await asyncio.sleep(delay)
            delay = min(self.config.reconnect_max_s, delay * 2)

    async def _serve(self, connection: ClientConnection) -> None:
        self._connection = connection
        for state in list(self._states.values()):  # may change while sending
            await connection.send(state.model_dump_json())
        tasks = [asyncio.create_task(self._pump(connection, fanout)) for fanout in self.fanouts.values()]
        try:
            async for message in connection:
                if isinstance(message, str):
                    self._control(message)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(self, connection: ClientConnection, fanout: PacketFanout) -> None:
        reader = fanout.subscribe_async(asyncio.get_running_loop(), UPLINK_QUEUE)
        try:
            while True:
                packet = await reader.get()
                await connection.send(packet.to_wire())
                self.packets_sent += 1
        except WebSocketException:
            pass  # the connection ended; run() reconnects
        finally:
            reader.close()

    def _control(self, message: str) -> None:
        try:
            request = KeyframeRequest.model_validate_json(message)
        except ValidationError:
            log.warning("video uplink: ignored a control message that is not a keyframe request")
            return
        fanout = self.fanouts.get(request.stream)
        if fanout is not None:
            fanout.request_keyframe()

    @staticmethod
    async def _send_text(connection: ClientConnection, text: str) -> None:
        with contextlib.suppress(WebSocketException):
            await connection.send(text)
