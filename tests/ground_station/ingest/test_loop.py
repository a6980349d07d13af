"""The aggregator's own MQTT network loop against a real private Mosquitto: it retries a broker that is
down, resubscribes after a restart, resumes its session, and never acknowledges on a later connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground_station.ingest import Aggregator
from ground_station.ingest.handoff import Item
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.factories import make_event
from tests.support.ingest import Publisher, make_config, wait_until
from tests.support.secure_broker import secured_test_broker

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(60),
]


def test_events_published_while_down_arrive_after_restart(
    broker: MosquittoBroker, tmp_path: Path, prefix: str, publisher: Publisher
) -> None:
    config = make_config(broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    first = Aggregator(config)
    first.start()
    assert first.wait_ready(10)
    first.stop()
    messages = [make_event(f"away{i}") for i in range(30)]
    for message in messages:
        publisher.event(message)
    publisher.flush()
    with Aggregator(config) as second:  # same client id: the broker kept the session and its queue
        assert wait_until(lambda: second.store.count_events() == 30), second.stats()
        assert second.stats().duplicates == 0


def test_reconnects_until_the_broker_is_up_and_after_it_restarts(tmp_path: Path, prefix: str) -> None:
    """The aggregator's own network loop: retries a broker that is down, resubscribes after a restart."""
    own = secured_test_broker()
    config = make_config(own, f"sqlite:///{tmp_path}/ground.sqlite", prefix)
    try:
        with Aggregator(config) as aggregator:
            assert wait_until(lambda: "Error" in (aggregator.stats().last_error or ""), 5), aggregator.stats()
            assert not aggregator.stats().connected
            own.start()
            assert aggregator.wait_ready(15), aggregator.stats()
            assert aggregator.stats().last_error is None  # cleared on connect
            pub = Publisher(own, prefix)
            try:
                for i in range(10):
                    pub.event(make_event(f"before{i}"))
                pub.flush()
                assert wait_until(lambda: aggregator.store.count_events() == 10), aggregator.stats()
            finally:
                pub.close()
            first_connection = aggregator.stats().connections
            own.restart()
            assert wait_until(lambda: aggregator.stats().connections >= 2 and aggregator.stats().subscribed, 15)
            # Acks for what came in on the earlier connection are not sent on this one (the broker may
            # have given those packet ids to other messages since).
            assert not aggregator._loop.acknowledge(first_connection, [Item(None, None, 1, 1, first_connection)])
            pub = Publisher(own, prefix)
            try:
                for i in range(10):
                    pub.event(make_event(f"after{i}"))
                pub.flush()
                assert wait_until(lambda: aggregator.store.count_events() == 20), aggregator.stats()
            finally:
                pub.close()
            assert aggregator.wait_idle(10)
    finally:
        own.close()
