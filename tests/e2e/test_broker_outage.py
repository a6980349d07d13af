"""Acceptance: the broker goes away while events happen; after it returns every event arrives,
in order, each id once (a QoS-1 redelivery repeats the same id and payload)."""

from __future__ import annotations

import time

import pytest

from edge.config import parse_config
from edge.factory import build_node
from smarteye.sim.broker import MosquittoBroker
from smarteye.wire.messages import DetectionEvent
from tests.support.edge_process import ANY_PORT_VIDEO
from tests.support.mqtt_recorder import MqttRecorder

pytestmark = pytest.mark.slow


def test_events_during_broker_outage_are_delivered_after_reconnect(media, model_path, tmp_path) -> None:
    published: list[DetectionEvent] = []
    with MosquittoBroker.secured(["outage"], persistence=True) as broker:
        # A persistent session, like the ground station's: the broker queues for it across its restart.
        recorder = MqttRecorder(broker, "smarteye/v1/+/events/#", persistent_id="outage-test")
        config = parse_config(
            {
                "node": "outage",
                "sources": [{"name": "cam", "url": str(media("vtest.avi")), "loop": True}],
                "detector": {"model": str(model_path)},
                "events": {"end_after_s": 1.0, "update_interval_s": 0.5},
                "mqtt": {**broker.client_settings("outage"), "spool_dir": str(tmp_path / "spool")},
                "video": ANY_PORT_VIDEO,
            }
        )
        node = build_node(config, on_event=published.append)
        node.start()
        try:
            recorder.wait_for(lambda: len(recorder.events()) >= 3, 90, "events before the outage")
            broker.stop()
            during_start = len(published)
            deadline = time.monotonic() + 60
            while len(published) < during_start + 15 and time.monotonic() < deadline:
                time.sleep(0.2)
            during = published[during_start:]
            assert len(during) >= 15, "too few events happened while the broker was down"
            assert node.publisher.stats()["pending"] >= 1
            broker.restart()
            recorder.wait_for(
                lambda: {e.id for e in during} <= {e["id"] for e in recorder.events()},
                60,
                "the events from the outage after reconnect",
            )
        finally:
            node.stop()
        recorder.wait_for(lambda: {e.id for e in published} <= {e["id"] for e in recorder.events()}, 30, "every event")
        recorder.close()

    received = recorder.events()
    first_seen: dict[str, dict] = {}
    for event in received:
        if event["id"] in first_seen:  # only a QoS-1 redelivery may repeat an id, with the same payload
            assert event == first_seen[event["id"]]
        else:
            first_seen[event["id"]] = event
    assert set(first_seen) == {e.id for e in published}
    assert list(first_seen) == [e.id for e in published], "events were not delivered in the order published"
    assert node.publisher.stats()["dropped"] == 0
