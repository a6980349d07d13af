"""The station's end-to-end confirmations over a real secured Mosquitto: after a batch is committed, each
node gets on `<prefix>/<node>/stored` the digests of its messages the station is finished with (stored, a
duplicate, or refused as bad data), and nothing else; a failing confirmation never stops storage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from ground_station.ingest import Aggregator
from ground_station.snapshots import Snapshots
from ground_station.store import Store
from smarteye.sim.broker import MosquittoBroker
from smarteye.wire.confirm import message_digest, split_digests
from smarteye.wire.topics import ANY, stored_topic
from tests.support.alerts import make_alert, make_counts
from tests.support.factories import make_event, make_status
from tests.support.ingest import Publisher, make_config, wait_until
from tests.support.secure_broker import paho_client

JPEG = b"\xff\xd8\xff\xe0" + bytes(100)
MP4 = b"\x00\x00\x00\x20ftypisom" + bytes(100)


class Confirmations:
    """A node's view of its `stored` topic (the ACL lets a node read only its own)."""

    def __init__(self, broker: MosquittoBroker, prefix: str, node: str) -> None:
        self.digests: list[bytes] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho_client(broker, node)
        self.client.on_connect = lambda c, *_: c.subscribe(stored_topic(prefix, node), qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.digests += split_digests(msg.payload)

    def got(self) -> set[bytes]:
        with self._lock:
            return set(self.digests)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_each_node_gets_the_digests_of_what_the_station_finished_with(
    broker: MosquittoBroker, prefix: str, publisher: Publisher, tmp_path: Path,
    running: Callable[[Aggregator], Aggregator],
) -> None:  # fmt: skip
    config = make_config(broker, f"sqlite:///{tmp_path}/g.sqlite", prefix)
    store = Store(config.database_url)  # the test's own: closed after the aggregator stopped
    aggregator = running(Aggregator(config, store, snapshots=Snapshots(store.engine)))  # keeps event snapshots
    node1, node2 = Confirmations(broker, prefix, "node1"), Confirmations(broker, prefix, "node2")
    try:
        event, alert = make_event("e1"), make_alert("a1", 0)
        confirmed = {  # relative topic -> payload: what node1 spools, stored or not
            "node1/events/cam1": event.model_dump_json().encode(),
            "node1/alerts/cam1": alert.model_dump_json().encode(),
            "node1/counts/cam1": make_counts().model_dump_json().encode(),
            "node1/snapshots/cam1/e1": JPEG,
            "node1/alert-snapshots/cam1/a1": JPEG,
            "node1/clips/cam1/a1": MP4,
        }
        for topic, payload in confirmed.items():
            publisher.publish(topic, payload)
        publisher.publish("node1/events/cam1", event.model_dump_json())  # a duplicate: settled too
        publisher.publish("node1/events/cam2", b"not json")  # refused as bad data: settled, never better
        publisher.publish("node1/status/cam1", make_status().model_dump_json(), retain=True)  # state: not spooled
        publisher.event(make_event("e2", node="node2"))
        publisher.flush()
        assert aggregator.wait_idle(10)

        expected = {message_digest(f"{prefix}/{t}", p) for t, p in confirmed.items()}
        expected.add(message_digest(f"{prefix}/node1/events/cam2", b"not json"))
        assert wait_until(lambda: node1.got() == expected, 10), (len(node1.got()), len(expected))
        e2 = make_event("e2", node="node2").model_dump_json().encode()
        assert wait_until(lambda: node2.got() == {message_digest(f"{prefix}/node2/events/cam1", e2)}, 10)
        assert aggregator.stats().malformed.get("bad_json") == 1
        assert aggregator.stats().stored == 2 and aggregator.stats().duplicates == 1  # e1 (twice), e2
    finally:
        node1.close()
        node2.close()
        aggregator.stop(timeout=2)
        store.close()


def test_a_failing_confirmation_never_stops_storage(
    broker: MosquittoBroker, prefix: str, publisher: Publisher, tmp_path: Path,
    running: Callable[[Aggregator], Aggregator],
) -> None:  # fmt: skip
    aggregator = Aggregator(make_config(broker, f"sqlite:///{tmp_path}/g.sqlite", prefix))
    real_publish = aggregator._loop.publish

    def refuse(topic: str, payload: bytes, *, retain: bool) -> threading.Event | None:
        if "/stored" in topic:
            raise RuntimeError("cannot publish: out of memory")
        return real_publish(topic, payload, retain=retain)

    aggregator._loop.publish = refuse  # type: ignore[method-assign]
    running(aggregator)
    for i in range(3):
        publisher.event(make_event(f"e{i}"))
    publisher.flush()
    assert wait_until(lambda: aggregator.stats().stored == 3, 10)
    assert aggregator._writer.confirm_errors >= 1


def test_the_station_never_takes_its_own_confirmations_as_input(
    broker: MosquittoBroker, prefix: str, tmp_path: Path
) -> None:
    aggregator = Aggregator(make_config(broker, f"sqlite:///{tmp_path}/g.sqlite", prefix))
    try:
        own = stored_topic(prefix, "node1")
        filters = [f.split("/", 2)[2] if f.startswith("$share/") else f for f in aggregator.subscriptions()]
        assert not any(mqtt.topic_matches_sub(f, own) for f in filters)
        assert any(mqtt.topic_matches_sub(f, stored_topic(prefix, ANY).replace(ANY, "x")) for f in [f"{prefix}/#"])
        # Even under a subscription that overlaps it, a `stored` message is acknowledged, not counted malformed.
        aggregator._on_publish(own.encode(), b"\x00" * 8, 1, 1)
        assert aggregator.stats().malformed == {}
    finally:
        aggregator.stop()
