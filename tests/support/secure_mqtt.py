"""A recorder on the secured broker (TLS, a login, the ACL of configs/mosquitto/): what the ground station's
user sees, retained flags included; and the figure lines the reliability report collects."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt

from smarteye.sim.broker import STATION_USER, MosquittoBroker
from tests.support.secure_broker import paho_client


def report_figure(scenario: str, **values: Any) -> None:
    """One parseable line per measured figure (`FIGURE <scenario> <JSON>`, as the other fault tests print
    theirs), collected by scripts/reliability_report.py."""
    print(f"FIGURE {scenario} {json.dumps(values, sort_keys=True)}", flush=True)


class Seen(NamedTuple):
    topic: str
    payload: bytes
    retain: bool


class SecureRecorder:
    """Subscribes as `user` (the station by default) over verified TLS and keeps every message.
    With `session` it keeps a persistent MQTT 5 session, so the broker queues for it while it is away."""

    def __init__(self, broker: MosquittoBroker, topic: str, user: str = STATION_USER, session: str | None = None):
        self.messages: list[Seen] = []
        self._lock = threading.Lock()
        client_id = session or f"rec-{uuid.uuid4().hex[:8]}"
        self.client = paho_client(broker, user, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        properties = None
        if session is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=session is None, properties=properties)
        self.client.loop_start()
        assert self._subscribed.wait(10), "recorder did not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Seen(message.topic, bytes(message.payload), bool(message.retain)))

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.messages)

    def json_on(self, suffix: str) -> list[dict[str, Any]]:
        """Decoded JSON payloads of the topics ending with `suffix` (e.g. "/status/cam")."""
        return [json.loads(m.payload) for m in self.snapshot() if m.topic.endswith(suffix) and m.payload]

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
