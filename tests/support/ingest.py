"""Helpers for the ground station's ingest tests: a station config on a private (secured) broker, a paho
publisher (what edge nodes look like to the broker: each its own login), and polling for a condition."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from ground_station.config import GroundStationConfig
from smarteye.sim.broker import STATION_USER, MosquittoBroker
from tests.support.secure_broker import mqtt_settings, paho_client


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
    mqtt = {**mqtt_settings(broker, STATION_USER), "client_id": f"ground-{uuid.uuid4().hex[:8]}",
            "topic_prefix": prefix, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}  # fmt: skip
    settings: dict[str, Any] = {
        "mqtt": mqtt,
        "database_url": db_url,
        "session_expiry_s": 120,
        "batch_linger_s": 0.01,
    }
    settings.update(overrides)
    return GroundStationConfig.model_validate(settings)


class Publisher:
    """Paho publishers, one per node, each logged in as that node (the first level of the topic after the
    prefix), as edge nodes are: on the secured broker's ACL a node may publish only under its own topics."""

    def __init__(self, broker: MosquittoBroker, prefix: str) -> None:
        self.broker = broker
        self.prefix = prefix
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.clients: dict[str, mqtt.Client] = {}

    def client(self, node: str) -> mqtt.Client:
        """The connected client of `node` (made on its first message; paho queues until the connection is up)."""
        if node not in self.clients:
            client = paho_client(self.broker, node, client_id=f"pub-{node}-{uuid.uuid4().hex[:8]}")
            client.max_inflight_messages_set(200)
            client.connect(self.broker.host, self.broker.port)
            client.loop_start()
            self.clients[node] = client
        return self.clients[node]

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        node = topic.split("/", 1)[0]
        self.infos.append(self.client(node).publish(f"{self.prefix}/{topic}", payload, qos=1, retain=retain))

    def event(self, message: Any, topic: str | None = None) -> None:
        self.publish(topic or f"{message.node}/events/{message.stream}", message.model_dump_json())

    def flush(self, timeout: float = 10.0) -> None:
        assert wait_until(lambda: all(info.is_published() for info in self.infos), timeout), "publisher stuck"

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
