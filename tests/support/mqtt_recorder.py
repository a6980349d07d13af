"""A real MQTT subscriber for tests: records every message and waits for conditions.  It logs in as the
station by default (over the secured broker's TLS), which may read every node's topics."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from smarteye.sim.broker import STATION_USER, MosquittoBroker
from tests.support.secure_broker import paho_client


@dataclass(slots=True)
class Received:
    topic: str
    data: dict[str, Any]
    retain: bool
    time: float


class MqttRecorder:
    """Subscribes to `topic` on a broker as `user` and keeps what arrives (tests are short, so a list is fine)."""

    def __init__(
        self, broker: MosquittoBroker, topic: str, persistent_id: str | None = None, user: str = STATION_USER
    ) -> None:
        self.topic = topic
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.client = paho_client(
            broker, user, client_id=persistent_id or f"test-{uuid.uuid4().hex[:8]}", clean_session=persistent_id is None
        )
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            data = json.loads(message.payload)
        except ValueError:
            data = {"raw": message.payload.decode(errors="replace")}
        with self.lock:
            self.messages.append(Received(message.topic, data, bool(message.retain), time.time()))

    def snapshot(self, kind: str | None = None) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if kind is None or m.data.get("kind") == kind]

    def events(self, **match: Any) -> list[dict[str, Any]]:
        return [m.data for m in self.snapshot("event") if all(m.data.get(k) == v for k, v in match.items())]

    def statuses(self, stream: str) -> list[dict[str, Any]]:
        return [m.data for m in self.snapshot("status") if m.data.get("stream") == stream]

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")

    def close(self) -> None:
        # Disconnect first: it wakes paho's loop thread, which then ends at once (stopped first, the thread
        # would sit out its 1 s select timeout).
        self.client.disconnect()
        self.client.loop_stop()
