"""Login throttling behind a reverse proxy (issue 12): `web.trusted_proxies`.

Only a trusted proxy's X-Forwarded-For is believed, and then the client is its right-most untrusted hop (the
left part is whatever the client sent). By default nobody is trusted: uvicorn's own default believed
127.0.0.1, so a local process could name any address and escape the per-address login throttle. The real
station process (its uvicorn server, as configured) is asked; the address it saw is the audit's target."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from ground_station.auth.roles import Role
from ground_station.config import GroundStationConfig
from ground_station.service import GroundStation
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.ports import free_tcp_port
from tests.support.accounts import FAST_HASHER
from tests.support.ingest import make_config

PASSWORD = "proxy-password-1"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def station(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Any]:
    started: list[GroundStation] = []

    def start(**web: Any) -> httpx.Client:
        config = make_config(
            broker, f"sqlite:///{tmp_path / f'gs-{len(started)}.sqlite'}", f"test-{uuid.uuid4().hex[:8]}/v1",
            web={"port": free_tcp_port(), **web},
        )  # fmt: skip
        station = GroundStation(config, hasher=FAST_HASHER)
        station.accounts.create_user("ada", PASSWORD, Role.ADMIN)
        station.start()
        started.append(station)
        return httpx.Client(base_url=station.url, timeout=10)

    yield start
    for station in started:
        station.stop()


def _address_seen(client: httpx.Client, forwarded_for: str) -> str:
    """The client address the station records for a failed login sent with this X-Forwarded-For."""
    response = client.post("/api/login", json={"username": "nobody", "password": "wrong-password"},
                           headers={"X-Forwarded-For": forwarded_for})  # fmt: skip
    assert response.status_code == 401
    login = client.post("/api/login", json={"username": "ada", "password": PASSWORD})
    assert login.status_code == 200
    entries = client.get("/api/audit", params={"action": "login.failure", "actor": "nobody", "limit": 1}).json()
    return str(entries["items"][0]["target"])


def test_no_forwarding_header_is_believed_by_default(station) -> None:  # type: ignore[no-untyped-def]
    client = station()
    assert _address_seen(client, "203.0.113.7") == "127.0.0.1"


def test_a_trusted_proxys_right_most_untrusted_hop_is_the_client(station) -> None:  # type: ignore[no-untyped-def]
    client = station(trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"])
    # The client wrote 198.51.100.1 itself; the outer proxy (10.1.2.3) saw 203.0.113.7 connect.
    assert _address_seen(client, "198.51.100.1, 203.0.113.7, 10.1.2.3") == "203.0.113.7"


def test_trusted_proxies_must_be_networks() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        GroundStationConfig.model_validate({"web": {"trusted_proxies": ["proxy.example.org"]}})
