"""Fixtures of the ingest tests: one private Mosquitto for the whole folder (each test uses its own
topic prefix and client ids), a publisher on it, and aggregators stopped even if a test fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from ground_station.ingest import Aggregator
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.ingest import Publisher


@pytest.fixture(scope="package")
def broker() -> Iterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}/v1"


@pytest.fixture
def publisher(broker: MosquittoBroker, prefix: str) -> Iterator[Publisher]:
    pub = Publisher(broker, prefix)
    yield pub
    pub.close()


@pytest.fixture
def running() -> Iterator[Callable[[Aggregator], Aggregator]]:
    """Start aggregators and make sure they are stopped even if the test fails."""
    started: list[Aggregator] = []

    def start(aggregator: Aggregator) -> Aggregator:
        started.append(aggregator)
        aggregator.start()
        assert aggregator.wait_ready(10), "aggregator did not subscribe"
        return aggregator

    yield start
    for aggregator in started:
        aggregator.stop(timeout=2)
