"""The station's /metrics: the real GroundStation fed over a real Mosquitto, scraped over HTTP and read
back with prometheus_client's own parser: the counters, gauges and the ingest latency histogram follow
the traffic."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ground_station.metrics import capture_time_of
from ground_station.service import GroundStation
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.sim.ports import free_tcp_port
from tests.support.factories import make_event, make_status
from tests.support.ingest import Publisher, make_config, wait_until

pytestmark = pytest.mark.timeout(60)
CAPTURE_AGE_S = 0.3  # events are published at least this long after their capture at the "edge"


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[GroundStation, Publisher]]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with MosquittoBroker() as broker:
        prefix = f"test-{uuid.uuid4().hex[:8]}/v1"
        config = make_config(
            broker,
            f"sqlite:///{tmp_path / 'gs.sqlite'}",
            prefix,
            web={"port": free_tcp_port(), "secure_cookies": False},
        )
        running = GroundStation(config)
        running.start()
        publisher = Publisher(broker, prefix)
        try:
            assert running.aggregator.wait_ready(10), "the station did not subscribe"
            yield running, publisher
        finally:
            publisher.close()
            running.stop()


def scrape(station: GroundStation) -> dict[str, float]:
    """Every sample of /metrics (no authentication), by name and labels: `name{label="v"}`."""
    response = httpx.get(station.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version="), response.headers["content-type"]
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_metrics_follow_what_the_station_ingests(station: tuple[GroundStation, Publisher]) -> None:
    gs, publisher = station
    before = scrape(gs)
    assert before["smarteye_messages_received_total"] == 0 and before["smarteye_events_stored_total"] == 0
    assert before["smarteye_ingest_latency_seconds_count"] == 0
    assert before["smarteye_mqtt_connected"] == 1

    captured = time.time() - CAPTURE_AGE_S
    events = [make_event(f"obj{i // 4}", i % 4, capture_time=captured - i / 1000) for i in range(20)]
    for event in events:
        publisher.event(event)
    for event in events[::4]:  # 5 QoS-1 redeliveries of events already stored
        publisher.event(event)
    good = json.loads(events[0].model_dump_json())
    publisher.publish("node1/events/cam1", b"{not json")
    publisher.publish("node1/events/cam1", json.dumps({**good, "score": 1.5}))
    publisher.publish("node1/status/cam1", make_status("node1", "cam1").model_dump_json())
    publisher.flush()
    assert wait_until(lambda: gs.aggregator.stats().received >= 28), gs.aggregator.stats()
    assert gs.aggregator.wait_idle(10)

    after = scrape(gs)
    assert after["smarteye_messages_received_total"] == 28
    assert after["smarteye_events_stored_total"] == 20
    assert after["smarteye_events_duplicate_total"] == 5
    assert after['smarteye_messages_malformed_total{reason="bad_json"}'] == 1
    assert after['smarteye_messages_malformed_total{reason="schema"}'] == 1
    assert after["smarteye_aggregator_queue_depth"] == 0 and after["smarteye_mqtt_connected"] == 1
    assert after["smarteye_live_clients"] == 0 and after["smarteye_live_dropped_total"] == 0
    assert after["smarteye_video_streams"] == 0 and after["smarteye_video_viewers"] == 0
    assert after["smarteye_video_packets_total"] == 0 and after["smarteye_video_bad_messages_total"] == 0

    # Every valid event handed to the store is observed once, with its age since capture at the edge.
    observed = after["smarteye_ingest_latency_seconds_count"]
    assert observed == gs.aggregator.stats().events == 25
    assert after['smarteye_ingest_latency_seconds_bucket{le="+Inf"}'] == observed
    assert after['smarteye_ingest_latency_seconds_bucket{le="0.25"}'] == 0  # each one is older than that
    assert after['smarteye_ingest_latency_seconds_bucket{le="10.0"}'] == observed  # none took seconds here
    assert observed * CAPTURE_AGE_S <= after["smarteye_ingest_latency_seconds_sum"] < observed * 10


def test_metrics_exposition_passes_promtool(station: tuple[GroundStation, Publisher]) -> None:
    """Prometheus' own linter on the exposition (Debian package `prometheus`; skipped without it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    gs, publisher = station
    publisher.event(make_event("linted", capture_time=time.time()))
    publisher.publish("node1/events/cam1", b"{not json")
    publisher.flush()
    assert wait_until(lambda: gs.aggregator.stats().received >= 2) and gs.aggregator.wait_idle(10)
    text = httpx.get(gs.url + "/metrics", timeout=5).text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_capture_time_is_read_from_compact_and_spaced_json() -> None:
    event = make_event("e", capture_time=1_700_000_123.25)
    assert capture_time_of(event.model_dump_json()) == 1_700_000_123.25  # as edge nodes write it
    assert capture_time_of(json.dumps(json.loads(event.model_dump_json()), indent=1)) == 1_700_000_123.25
    assert capture_time_of('{"node":"n","capture_time":1.5e9}') == 1.5e9  # the last key
    assert capture_time_of('{"node":"n"}') is None
    assert capture_time_of('{"capture_time":"soon"}') is None
