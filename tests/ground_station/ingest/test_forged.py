"""A node cannot speak for another, end to end, on the secured broker (TLS, a login per node, the ACL of
configs/mosquitto/): node A publishing under node B's topics is refused by the broker (PUBACK "Not
authorized", the station never sees it); node A publishing under its own topics but claiming B in the
payload is refused by the station and counted (`wrong_topic`).  Real Mosquitto, real aggregator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from ground_station.config import GroundStationConfig
from ground_station.ingest import Aggregator
from ground_station.store import Store
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import Telemetry
from tests.support.factories import make_event
from tests.support.ingest import wait_until
from tests.support.secure_broker import paho_client

pytestmark = [pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
              pytest.mark.timeout(60)]  # fmt: skip
PREFIX = "smarteye/v1"


@pytest.fixture(scope="module")
def secured() -> Iterator[MosquittoBroker]:
    with MosquittoBroker.secured(["site-a", "site-b"], prefix=PREFIX) as broker:
        yield broker


class Node:
    """What an edge node looks like to the broker: its own login over verified TLS, MQTT 5, QoS 1."""

    def __init__(self, broker: MosquittoBroker, user: str) -> None:
        self.client = paho_client(broker, user, protocol=mqtt.MQTTv5)
        self.refused: list[str] = []  # topics the broker answered "Not authorized"
        self.acked: set[int] = set()
        self.client.on_publish = self._on_publish
        self.topics: dict[int, str] = {}
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        if getattr(rc, "is_failure", False):
            self.refused.append(self.topics.get(mid, "?"))
        self.acked.add(mid)

    def publish(self, topic: str, payload: str | bytes) -> None:
        info = self.client.publish(f"{PREFIX}/{topic}", payload, qos=1)
        self.topics[info.mid] = topic
        assert wait_until(lambda: info.mid in self.acked, 5), f"no PUBACK for {topic}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_forged_event_or_telemetry_for_another_node_is_refused_and_counted(
    secured: MosquittoBroker, tmp_path: Path, running: Callable[[Aggregator], Aggregator]
) -> None:
    mqtt_settings = {**secured.client_settings("station"), "client_id": f"ground-{uuid.uuid4().hex[:6]}",
                     "topic_prefix": PREFIX}  # fmt: skip
    config = GroundStationConfig.model_validate(
        {"mqtt": mqtt_settings, "database_url": f"sqlite:///{tmp_path}/g.sqlite", "batch_linger_s": 0.01}
    )
    pushed: list[tuple[str, str, str | None]] = []
    node_a = Node(secured, "site-a")
    try:
        with Store(config.database_url) as store:
            aggregator = running(Aggregator(config, store, on_message=lambda k, n, s, p: pushed.append((k, n, s))))
            own = make_event("a-own", node="site-a", stream="cam1")
            node_a.publish("site-a/events/cam1", own.model_dump_json())
            # 1. under B's topics: the broker refuses it (the station never receives it)
            forged_b = make_event("b-forged-topic", node="site-b", stream="cam1")
            node_a.publish("site-b/events/cam1", forged_b.model_dump_json())
            telemetry_b = Telemetry(node="site-b", stream="drone", source="klv", time=time.time())
            node_a.publish("site-b/telemetry/drone", telemetry_b.model_dump_json())
            assert node_a.refused == ["site-b/events/cam1", "site-b/telemetry/drone"]
            # 2. under its own topics, claiming B: the station refuses and counts it
            node_a.publish("site-a/events/cam1", make_event("b-forged-payload", node="site-b").model_dump_json())
            node_a.publish("site-a/telemetry/drone", telemetry_b.model_dump_json())
            assert wait_until(lambda: aggregator.stats().received == 3), aggregator.stats()
            assert aggregator.wait_idle(10)
            stats = aggregator.stats()
            assert stats.malformed == {"wrong_topic": 2}
            assert store.count_events() == 1 and store.event_messages("a-own")
            assert not store.event_messages("b-forged-topic") and not store.event_messages("b-forged-payload")
            assert pushed == [("event", "site-a", "cam1")]  # no telemetry was pushed live as site-b
    finally:
        node_a.close()
