"""The station's /metrics: the real GroundStation fed over a real Mosquitto, scraped over HTTP and read
back with prometheus_client's own parser: the counters, gauges and the ingest latency histogram follow
the traffic, and the alerts and webhook deliveries follow what the store holds (a real receiver up, one down)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ground_station.api.webhooks import endpoint_id
from ground_station.metrics import capture_time_of
from ground_station.service import GroundStation
from smarteye.sim.broker import find_mosquitto
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import AlertState
from tests.support.alerts import make_alert
from tests.support.factories import make_event, make_status
from tests.support.ingest import Publisher, make_config, wait_until
from tests.support.secure_broker import secured_test_broker
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(60)
CAPTURE_AGE_S = 0.3  # events are published at least this long after their capture at the "edge"


@contextmanager
def running_station(tmp_path: Path, **overrides: Any) -> Iterator[tuple[GroundStation, Publisher]]:
    """A GroundStation on its own Mosquitto, subscribed, with a publisher that looks like an edge node."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with secured_test_broker() as broker:
        prefix = f"test-{uuid.uuid4().hex[:8]}/v1"
        config = make_config(
            broker,
            f"sqlite:///{tmp_path / 'gs.sqlite'}",
            prefix,
            web={"port": free_tcp_port(), "secure_cookies": False},
            **overrides,
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


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[GroundStation, Publisher]]:
    with running_station(tmp_path) as running:
        yield running


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
    assert after["smarteye_alert_messages_total"] == 0 and after["smarteye_alert_messages_stored_total"] == 0
    assert [after[f'smarteye_alerts{{state="{state}"}}'] for state in AlertState] == [0, 0, 0]
    assert not [name for name in after if name.startswith("smarteye_webhook_")]  # no endpoint configured

    # Every valid event handed to the store is observed once, with its age since capture at the edge.
    observed = after["smarteye_ingest_latency_seconds_count"]
    assert observed == gs.aggregator.stats().events == 25
    assert after['smarteye_ingest_latency_seconds_bucket{le="+Inf"}'] == observed
    assert after['smarteye_ingest_latency_seconds_bucket{le="0.25"}'] == 0  # each one is older than that
    assert after['smarteye_ingest_latency_seconds_bucket{le="10.0"}'] == observed  # none took seconds here
    assert observed * CAPTURE_AGE_S <= after["smarteye_ingest_latency_seconds_sum"] < observed * 10


SECRET = "s3cret-shared-with-the-receiver"


def test_metrics_count_alerts_by_state_and_webhook_deliveries_per_endpoint(tmp_path: Path) -> None:
    """Alerts by their newest state and each endpoint's deliveries, read from the store at scrape time: a
    receiver that is up gets every one; one that is down keeps them pending, then failed after the last attempt."""
    up, down = WebhookReceiver(SECRET), WebhookReceiver(SECRET)  # `down` is never started: connection refused
    webhooks = {"endpoints": [{"url": up.url, "secret": SECRET}, {"url": down.url, "secret": SECRET}],
                "backoff_initial_s": 60}  # down's retries wait past the test  # fmt: skip
    with up, running_station(tmp_path, webhooks=webhooks) as (gs, publisher):
        messages = [make_alert("a1", 0), make_alert("a1", 1, objects=2), make_alert("a1", 2, AlertState.END),
                    make_alert("a2", 0), make_alert("a3", 0), make_alert("a3", 1)]  # fmt: skip
        for message in [*messages, messages[0]]:  # the last: a QoS-1 redelivery, stored and sent once
            publisher.event(message, "node1/alerts/cam1")
        publisher.flush()
        assert wait_until(lambda: gs.aggregator.stats().alerts == 7) and gs.aggregator.wait_idle(10)
        store = gs.store
        assert wait_until(lambda: store.delivery_summary().get(up.url, {}).get("delivered") == 6)
        assert wait_until(lambda: [d.attempts for d in store.query_deliveries(url=down.url).deliveries] == [1] * 6)
        assert len(up.wait_for(6)) == 6 and all(hook.signed for hook in up.received())

        samples = scrape(gs)
        assert samples["smarteye_alert_messages_total"] == 7 and samples["smarteye_alert_messages_stored_total"] == 6
        alerts = {state: samples[f'smarteye_alerts{{state="{state}"}}'] for state in ("start", "update", "end")}
        assert alerts == {"start": 1, "update": 1, "end": 1}  # a2 started, a3 updated, a1 ended

        def deliveries(url: str) -> dict[str, float]:
            return {state: samples[f'smarteye_webhook_deliveries{{endpoint="{endpoint_id(url)}",state="{state}"}}']
                    for state in ("pending", "delivered", "failed")}  # fmt: skip

        def attempts(url: str, result: str) -> float:
            return samples[f'smarteye_webhook_attempts_total{{endpoint="{endpoint_id(url)}",result="{result}"}}']

        assert deliveries(up.url) == {"pending": 0, "delivered": 6, "failed": 0}
        assert deliveries(down.url) == {"pending": 6, "delivered": 0, "failed": 0}
        assert (attempts(up.url, "delivered"), attempts(up.url, "error")) == (6, 0)
        assert (attempts(down.url, "delivered"), attempts(down.url, "error")) == (0, 6)
        assert not [name for name in samples if "127.0.0.1" in name]  # URLs (and their tokens) stay off /metrics

        for delivery in store.query_deliveries(url=down.url).deliveries[:2]:  # their last attempt fails, as a
            store.delivery_failed(delivery.id, "(test) last attempt", None, None, time.time())  # worker records it
        samples = scrape(gs)
        assert deliveries(down.url) == {"pending": 4, "delivered": 0, "failed": 2}
        assert deliveries(up.url) == {"pending": 0, "delivered": 6, "failed": 0}
        if shutil.which("promtool"):  # these families pass Prometheus' linter too
            assert_promtool_passes(httpx.get(gs.url + "/metrics", timeout=5).text)


def test_metrics_exposition_passes_promtool(station: tuple[GroundStation, Publisher]) -> None:
    """Prometheus' own linter on the exposition (Debian package `prometheus`; skipped without it)."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    gs, publisher = station
    publisher.event(make_event("linted", capture_time=time.time()))
    publisher.publish("node1/events/cam1", b"{not json")
    publisher.flush()
    assert wait_until(lambda: gs.aggregator.stats().received >= 2) and gs.aggregator.wait_idle(10)
    assert_promtool_passes(httpx.get(gs.url + "/metrics", timeout=5).text)


def assert_promtool_passes(exposition: str) -> None:
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_capture_time_is_read_from_compact_and_spaced_json() -> None:
    event = make_event("e", capture_time=1_700_000_123.25)
    assert capture_time_of(event.model_dump_json()) == 1_700_000_123.25  # as edge nodes write it
    assert capture_time_of(json.dumps(json.loads(event.model_dump_json()), indent=1)) == 1_700_000_123.25
    assert capture_time_of('{"node":"n","capture_time":1.5e9}') == 1.5e9  # the last key
    assert capture_time_of('{"node":"n"}') is None
    assert capture_time_of('{"capture_time":"soon"}') is None
