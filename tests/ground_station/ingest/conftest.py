"""Fixtures of the ingest tests: aggregators stopped even if a test fails (the broker, prefix and publisher
come from tests/ground_station/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ground_station.ingest import Aggregator


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
