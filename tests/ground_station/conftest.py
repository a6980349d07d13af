"""Fixtures shared by the ground station's tests: a private, secured Mosquitto per package (TLS, a login per
test node and for the station, the ACL; each test uses its own topic prefix and client ids) with a publisher
on it, and the video relay's station."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.ingest import Publisher
from tests.support.secure_broker import secured_test_broker
from tests.support.video_station import VideoStation, open_video_station


@pytest.fixture
def video_station(tmp_path: Path) -> Iterator[VideoStation]:
    """A ground station app with a video relay, node e1's edge token and a viewer token."""
    with open_video_station(tmp_path) as station:
        yield station


@pytest.fixture(scope="package")
def broker() -> Iterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with secured_test_broker() as b:
        yield b


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}/v1"


@pytest.fixture
def publisher(broker: MosquittoBroker, prefix: str) -> Iterator[Publisher]:
    pub = Publisher(broker, prefix)
    yield pub
    pub.close()
