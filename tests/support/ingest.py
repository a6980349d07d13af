"""Helpers for the ground station's ingest tests: a station config on a private broker, a plain paho
publisher (what an edge node looks like to the broker), and polling for a condition."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from ground_station.config import GroundStationConfig
from smarteye.sim.broker import MosquittoBroker


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def make_config(broker: MosquittoBroker, db_url: str, prefix: str, **overrides: Any) -> GroundStationConfig:
    # A short reconnect wait: tests that restart the broker wait for the reconnect, which the default 1 s
    # backoff only slows.
    mqtt = {"url": broker.url, "client_id": f"ground-{uuid.uuid4().hex[:8]}", "topic_prefix": prefix,
            "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}  # fmt: skip
    settings: dict[str, Any] = {
        "mqtt": mqtt,
        "database_url": db_url,
        "session_expiry_s": 120,
        "batch_linger_s": 0.01,
    }
    settings.update(overrides)
    return GroundStationConfig.model_validate(settings)


class Publisher:
    """A plain paho publisher (what an edge node looks like to the broker)."""

    def __init__(self, broker: MosquittoBroker, prefix: str) -> None:
        self.prefix = prefix
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(200)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.infos.append(self.client.publish(f"{self.prefix}/{topic}", payload, qos=1, retain=retain))

    def event(self, message: Any, topic: str | None = None) -> None:
        self.publish(topic or f"{message.node}/events/{message.stream}", message.model_dump_json())

    def flush(self, timeout: float = 10.0) -> None:
        assert wait_until(lambda: all(info.is_published() for info in self.infos), timeout), "publisher stuck"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
