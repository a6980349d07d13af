"""Against a broker without MQTT 5 the station says so plainly (log and `last_error`), once, not silently
and not once per retry.  The brokers here are tiny real TCP peers behaving as MQTT 3.1.1-only brokers do
with an MQTT 5 CONNECT (Mosquitto 2 always speaks MQTT 5): one answers CONNACK "unacceptable protocol
version", the other closes the connection without a word."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground_station.config import GroundStationConfig
from ground_station.ingest import Aggregator
from ground_station.store import Store
from tests.support.ingest import wait_until

pytestmark = pytest.mark.timeout(60)
CONNACK_UNACCEPTABLE_PROTOCOL = b"\x20\x02\x00\x01"  # MQTT 3.1.1 CONNACK, return code 1


@contextlib.contextmanager
def mqtt311_only_peer(answer: bytes) -> Iterator[tuple[int, list[bytes]]]:
    """A listener that reads each CONNECT, sends `answer` (maybe nothing) and closes."""
    connects: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    connects.append(conn.recv(4096))
                    if answer:
                        conn.sendall(answer)
                        time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], connects
    finally:
        stop.set()
        listener.close()
        thread.join(2)


@pytest.mark.parametrize("answer", [CONNACK_UNACCEPTABLE_PROTOCOL, b""], ids=["connack-refuses", "closes"])
def test_the_station_says_plainly_that_it_needs_mqtt5(
    answer: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mqtt311_only_peer(answer) as (port, connects):
        config = GroundStationConfig.model_validate({
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "reconnect_min_s": 0.1, "reconnect_max_s": 0.2},
            "database_url": f"sqlite:///{tmp_path}/g.sqlite",
        })  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="ground_station.ingest.loop"), Store(config.database_url) as store:
            aggregator = Aggregator(config, store)
            aggregator.start()
            try:
                assert wait_until(lambda: len(connects) >= 4, 10)  # it kept retrying meanwhile
                assert connects[0][8] == 5  # it asked for MQTT 5 (the protocol level byte after "MQTT")
                error = aggregator.stats().last_error or ""
                assert "MQTT 5" in error, error
                assert not aggregator.stats().connected
            finally:
                aggregator.stop(timeout=2)
    said = [r.getMessage() for r in caplog.records if "MQTT 5" in r.getMessage()]
    assert len(said) == 1, said  # plainly, once: not a line per retry
