"""Live push to browsers and API clients: messages from the aggregator's thread fan out to every
connected WebSocket through a bounded queue per client (a slow client loses its oldest messages,
it never slows the aggregator or the other clients). Each queued item is (kind, text): the kind is known
once, at publish (from the message's topic, or parsed from it), so who may see what is decided on a parsed
field, never by searching the text of a payload that a node wrote."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

CLIENT_QUEUE = 256

Pushed = tuple[str | None, str]  # (kind, JSON text)


def message_kind(text: str) -> str | None:
    """The `kind` field of a JSON message, or None if it is not a JSON object with a string kind."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    kind = value.get("kind") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


class LiveHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[Pushed]] = set()
        self._lock = threading.Lock()
        self.dropped = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the WebSockets run on (set when the web server starts)."""
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[Pushed]:
        queue: asyncio.Queue[Pushed] = asyncio.Queue(CLIENT_QUEUE)
        with self._lock:
            self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Pushed]) -> None:
        with self._lock:
            self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, message: dict[str, Any] | str, kind: str | None = None) -> None:
        """Thread-safe: hand a message to every connected client. `kind`: the message's kind as its topic
        says (telemetry, event…); None: read from the message itself."""
        if self._loop is None or not self._clients:
            return
        if isinstance(message, str):
            text = message
            kind = kind if kind is not None else message_kind(message)
        else:
            text = json.dumps(message)
            kind = kind if kind is not None else message.get("kind")
        self._loop.call_soon_threadsafe(self._fan_out, (kind, text))

    def _fan_out(self, item: Pushed) -> None:
        with self._lock:
            clients = list(self._clients)
        for queue in clients:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(item)


class TelemetryCache:
    """The latest telemetry message per (node, stream), for the pilot map's first paint."""

    def __init__(self, max_streams: int = 1000) -> None:
        self._latest: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.max_streams = max_streams

    def update(self, node: str, stream: str, payload: str) -> None:
        with self._lock:
            if (node, stream) not in self._latest and len(self._latest) >= self.max_streams:
                return
            self._latest[(node, stream)] = payload

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for p in self._latest.values()]
