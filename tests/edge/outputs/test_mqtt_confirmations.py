"""End-to-end confirmations on the edge's side, against a real secured Mosquitto and no ground station: a
broker PUBACK only marks an event sent; the event stays in the spool, is sent again after every reconnect and
after `confirm_timeout_s`, and leaves only when a confirmation on `<prefix>/<node>/stored` names its digest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edge.outputs.mqtt_publisher import MqttPublisher
from smarteye.config.mqtt import MqttConfig
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.confirm import message_digest
from smarteye.wire.topics import stored_topic
from tests.edge.outputs.test_mqtt_publisher import EVENTS, NODE, PREFIX, Collector, event, make_publisher, wait_until
from tests.support.secure_broker import paho_client

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(60),
]


@pytest.fixture
def persistent_broker(secure_broker: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return secure_broker(NODE, prefix=PREFIX, persistence=True)


def confirm_as_station(broker: MosquittoBroker, payloads: list[bytes]) -> None:
    """What the station publishes once it has stored these events: their digests (the ACL lets it)."""
    station = paho_client(broker)
    station.connect(broker.host, broker.port)
    station.loop_start()
    try:
        body = b"".join(message_digest(EVENTS, p) for p in payloads)
        station.publish(stored_topic(PREFIX, NODE), body, qos=1).wait_for_publish(5)
    finally:
        station.disconnect()
        station.loop_stop()


def test_unconfirmed_events_are_kept_and_sent_again_after_a_reconnect(
    persistent_broker: MosquittoBroker, tmp_path: Path
) -> None:
    broker = persistent_broker
    sub = Collector(broker, EVENTS, client_id="collector-confirm", clean_session=False)
    pub = make_publisher(broker, tmp_path, confirmations=True)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        for i in range(5):
            pub.publish_event(EVENTS, event(i))
        assert wait_until(lambda: sorted(sub.event_ids()) == list(range(5)), 10)
        assert wait_until(lambda: pub.stats()["unconfirmed"] == 5, 5)  # the broker has them: marked sent
        assert pub.stats()["pending"] == 5 and pub.stats()["delivered"] == 0  # ...but nobody confirmed them

        broker.stop()
        broker.start()
        assert wait_until(lambda: pub.connected and pub.stats()["reconnects"] == 1, 10)
        # The broker may have lost them: every unconfirmed event goes out again, and stays until confirmed.
        assert wait_until(lambda: all(sub.event_ids().count(i) >= 2 for i in range(5)), 10), sub.event_ids()
        assert wait_until(lambda: pub.stats()["unconfirmed"] == 5, 5)
        assert pub.stats()["pending"] == 5 and pub.stats()["resent"] == 5

        confirm_as_station(broker, [event(i) for i in range(3)])
        assert wait_until(lambda: pub.stats()["pending"] == 2, 10), pub.stats()
        assert pub.stats()["delivered"] == 3 and pub.stats()["unconfirmed"] == 2
    finally:
        pub.stop()
        sub.close()


def test_unconfirmed_events_are_sent_again_after_the_timeout(broker_with_node: MosquittoBroker, tmp_path: Path) -> None:
    """While connected (no reconnect), what the station has not confirmed within the timeout goes out again."""
    sub = Collector(broker_with_node, EVENTS)
    pub = make_publisher(broker_with_node, tmp_path, confirmations=True, confirm_timeout_s=1)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        pub.publish_event(EVENTS, event(7))
        assert wait_until(lambda: sub.event_ids().count(7) >= 2, 10), sub.event_ids()
        stats = pub.stats()
        assert stats["reconnects"] == 0 and stats["resent"] >= 1 and stats["pending"] == 1
        confirm_as_station(broker_with_node, [event(7)])
        assert wait_until(lambda: pub.stats()["pending"] == 0, 10)
    finally:
        pub.stop()
        sub.close()


@pytest.fixture
def broker_with_node(secure_broker: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return secure_broker(NODE, prefix=PREFIX)


def test_confirmations_on_need_a_node_availability_topic_and_auto_goes_without(tmp_path: Path) -> None:
    config = MqttConfig.model_validate({"spool_dir": tmp_path, "topic_prefix": PREFIX, "confirmations": "on"})
    with pytest.raises(ValueError, match="confirmations need the availability topic"):
        MqttPublisher(config, client_id="x", availability_topic="elsewhere/availability", spool_name="x")
    assert not list(tmp_path.glob("*.sqlite"))  # refused before the spool was opened
    auto = MqttConfig.model_validate({"spool_dir": tmp_path, "topic_prefix": PREFIX})
    assert auto.confirmations == "auto"
    publisher = MqttPublisher(auto, client_id="x", availability_topic="elsewhere/availability", spool_name="x")
    assert publisher.stats()["unconfirmed"] == 0  # no confirmation topic: the broker's PUBACK settles


def test_auto_settles_on_the_puback_until_a_station_first_confirms_and_remembers_it(
    broker_with_node: MosquittoBroker, tmp_path: Path
) -> None:
    """`auto`: a node no station consumes never keeps or re-sends; the first confirmation switches it to keeping
    events until confirmed, and the spool file remembers that across a restart of the node."""
    sub = Collector(broker_with_node, EVENTS)
    pub = make_publisher(broker_with_node, tmp_path, confirmations="auto", confirm_timeout_s=1)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected, 5)
        pub.publish_event(EVENTS, event(1))
        assert wait_until(lambda: pub.stats()["delivered"] == 1 and pub.stats()["pending"] == 0, 10), pub.stats()
        confirm_as_station(broker_with_node, [event(1)])  # a station is there: from now on, keep until confirmed
        assert wait_until(lambda: pub.stats()["confirming"], 10)
        pub.publish_event(EVENTS, event(2))
        assert wait_until(lambda: pub.stats()["unconfirmed"] == 1, 10), pub.stats()
    finally:
        pub.stop()
    assert sub.event_ids().count(1) == 1  # settled by the PUBACK, never sent again
    again = make_publisher(broker_with_node, tmp_path, confirmations="auto")
    try:
        assert again.stats()["confirming"] and again.stats()["unconfirmed"] == 1  # remembered in the spool file
    finally:
        again.stop()
        sub.close()
