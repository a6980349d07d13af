"""Webhooks end to end: alerts published by a node over a real Mosquitto, stored by a real aggregator and
POSTed to a real HTTP receiver on 127.0.0.1 that checks every signature; a receiver that is down gets
them after retries; pending deliveries survive a restart of the station."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ground_station.ingest import Aggregator
from ground_station.store import Store
from ground_station.webhooks import SIGNATURE_HEADER, sign, verify
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import AlertState
from smarteye.wire.rules import Severity
from tests.support.alerts import make_alert
from tests.support.ingest import Publisher, make_config, wait_until
from tests.support.secure_broker import mqtt_settings
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "s3cret-shared-with-the-receiver"
needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")


def test_signature_binds_time_and_body() -> None:
    body = b'{"kind":"alert"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)  # another body
    assert not verify("another-secret-entirely", header, body, now=1_700_000_100)
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000001"), body, now=1_700_000_100)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # replayed too late
    assert not verify(SECRET, "v1=abc", body) and not verify(SECRET, "", body)


@pytest.fixture
def station(broker: MosquittoBroker, prefix: str, tmp_path: Path) -> Iterator[Callable[..., Aggregator]]:
    """Aggregators on one database, with webhooks to the given receivers (stopped after the test)."""
    started: list[Aggregator] = []
    client_id = f"ground-{uuid.uuid4().hex[:8]}"

    def start(*endpoints: dict[str, object], **webhooks: object) -> Aggregator:
        config = make_config(
            broker, f"sqlite:///{tmp_path}/ground.sqlite", prefix,
            mqtt={**mqtt_settings(broker), "client_id": client_id, "topic_prefix": prefix},
            webhooks={"endpoints": list(endpoints), **webhooks},
        )  # fmt: skip
        aggregator = Aggregator(config)
        started.append(aggregator)
        aggregator.start()
        assert aggregator.wait_ready(10)
        return aggregator

    yield start
    for aggregator in started:
        aggregator.stop(timeout=2)


def lifecycle(alert_id: str, severity: Severity = Severity.WARNING) -> list:  # type: ignore[type-arg]
    return [
        make_alert(alert_id, 0, severity=severity),
        make_alert(alert_id, 1, objects=2, severity=severity),
        make_alert(alert_id, 2, AlertState.END, objects=0, severity=severity),
    ]


@needs_mosquitto
@pytest.mark.timeout(60)
def test_every_alert_reaches_the_receiver_signed(station: Callable[..., Aggregator], publisher: Publisher) -> None:
    with WebhookReceiver(SECRET) as receiver, WebhookReceiver("other-receivers-own-secret") as critical_only:
        aggregator = station(
            {"url": receiver.url, "secret": SECRET},
            {"url": critical_only.url, "secret": "other-receivers-own-secret", "min_severity": "critical",
             "states": ["start"]},
        )  # fmt: skip
        messages = lifecycle("a1") + lifecycle("a2", Severity.CRITICAL)
        for message in messages:
            publisher.event(message, "node1/alerts/cam1")
        publisher.event(messages[0], "node1/alerts/cam1")  # a QoS-1 redelivery is not sent twice
        publisher.flush()
        hooks = receiver.wait_for(6)
        assert [h.data["id"] for h in hooks] == [m.id for m in messages]  # every one, in order
        assert all(h.signed for h in hooks), [h.headers.get(SIGNATURE_HEADER) for h in hooks]
        assert [h.body.decode() for h in hooks] == [m.model_dump_json() for m in messages]  # as received
        assert hooks[0].headers["Content-Type"] == "application/json" and hooks[0].path == "/hooks/smarteye"
        assert [h.data["id"] for h in critical_only.wait_for(1)] == ["a2:0"]
        assert wait_until(lambda: aggregator.store.delivery_summary()[receiver.url]["delivered"] == 6)
        time.sleep(0.3)
        assert len(receiver.received()) == 6 and len(critical_only.received()) == 1


@needs_mosquitto
@pytest.mark.timeout(60)
def test_a_receiver_that_is_down_gets_the_alerts_after_retries(
    station: Callable[..., Aggregator], publisher: Publisher
) -> None:
    receiver = WebhookReceiver(SECRET)  # not started: connections are refused
    aggregator = station({"url": receiver.url, "secret": SECRET}, backoff_initial_s=0.2, backoff_max_s=0.5)
    messages = lifecycle("a1")
    for message in messages:
        publisher.event(message, "node1/alerts/cam1")
    publisher.flush()
    store = aggregator.store
    assert wait_until(lambda: min((d.attempts for d in store.query_deliveries().deliveries), default=0) >= 2)
    failing = store.query_deliveries(state="pending").deliveries
    assert len(failing) == 3 and all("ConnectError" in (d.last_error or "") for d in failing)
    with receiver:
        hooks = receiver.wait_for(3)
        assert sorted(h.data["id"] for h in hooks) == sorted(m.id for m in messages) and all(h.signed for h in hooks)
        assert wait_until(lambda: store.delivery_summary()[receiver.url]["delivered"] == 3)
    delivered = store.query_deliveries(state="delivered").deliveries
    assert all(d.attempts >= 3 and d.last_error is None and d.last_status == 200 for d in delivered)
    assert aggregator.webhooks.stats()[receiver.url].failed_attempts >= 6


@needs_mosquitto
@pytest.mark.timeout(60)
def test_pending_deliveries_survive_a_restart_of_the_station(
    station: Callable[..., Aggregator], publisher: Publisher
) -> None:
    receiver = WebhookReceiver(SECRET)
    first = station({"url": receiver.url, "secret": SECRET}, backoff_initial_s=30)  # next retry: long after the stop
    messages = lifecycle("a1")
    for message in messages:
        publisher.event(message, "node1/alerts/cam1")
    publisher.flush()
    assert wait_until(lambda: first.stats().alerts_stored == 3) and first.wait_idle(10)
    assert wait_until(lambda: all(d.attempts == 1 for d in first.store.query_deliveries().deliveries))
    first.stop()
    with Store(first.config.database_url) as store:
        assert store.delivery_summary()[receiver.url]["pending"] == 3
        for delivery in store.query_deliveries().deliveries:  # due now: as if the 30 s had passed meanwhile
            store.delivery_failed(delivery.id, "(test) wait over", None, time.time(), time.time())
    with receiver:
        second = station({"url": receiver.url, "secret": SECRET}, backoff_initial_s=30)
        hooks = receiver.wait_for(3)
        assert sorted(h.data["id"] for h in hooks) == sorted(m.id for m in messages) and all(h.signed for h in hooks)
        assert wait_until(lambda: second.store.delivery_summary()[receiver.url] == {"pending": 0, "delivered": 3,
                                                                                     "failed": 0})  # fmt: skip


@needs_mosquitto
@pytest.mark.timeout(60)
def test_a_delivery_fails_for_good_after_the_last_attempt_and_can_be_retried(
    station: Callable[..., Aggregator], publisher: Publisher
) -> None:
    with WebhookReceiver(SECRET, status=500) as receiver:
        aggregator = station({"url": receiver.url, "secret": SECRET}, max_attempts=2, backoff_initial_s=0.1)
        publisher.event(make_alert("a1", 0), "node1/alerts/cam1")
        publisher.flush()
        store = aggregator.store
        assert wait_until(lambda: store.delivery_summary().get(receiver.url, {}).get("failed") == 1)
        (failed,) = store.query_deliveries(state="failed").deliveries
        assert (failed.attempts, failed.last_status, failed.last_error) == (2, 500, "HTTP 500 Internal Server Error")
        assert len(receiver.received()) == 2
        receiver.status = 204
        assert store.retry_delivery(failed.id)
        aggregator.webhooks.wake()
        assert wait_until(lambda: store.delivery_summary()[receiver.url]["delivered"] == 1)
        assert len(receiver.received()) == 3
