"""Identity comes from the topic: the broker's ACL lets a node publish only under its own topics, so what
a message says about its node or stream must match the topic it came on, or it is refused and counted;
a snapshot belongs to an event by (node, stream, event id), so no node can attach its picture to another
node's event.  Real parser, writer and SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ground_station.config import GroundStationConfig
from ground_station.ingest.malformed import WRONG_TOPIC, Malformed
from ground_station.ingest.parse import LiveTelemetry, MessageParser
from ground_station.snapshots import ForeignSnapshotError, Snapshots
from ground_station.store import Received, Store
from smarteye.wire.messages import Telemetry
from tests.support.factories import make_event, make_status
from tests.support.writer_run import item_for, run_writer

PREFIX = "smarteye/v1"
JPEG_A = b"\xff\xd8\xff\xe0" + b"A" * 64
JPEG_B = b"\xff\xd8\xff\xe0" + b"B" * 64


def telemetry(node: str, stream: str) -> bytes:
    return Telemetry(node=node, stream=stream, source="klv", time=time.time()).model_dump_json().encode()


def test_telemetry_takes_its_node_and_stream_from_the_topic() -> None:
    parser = MessageParser(PREFIX, snapshots=True)
    live = parser.parse(f"{PREFIX}/site-a/telemetry/drone".encode(), telemetry("site-a", "drone"), time.time())
    assert isinstance(live, LiveTelemetry) and (live.node, live.stream) == ("site-a", "drone")
    # Issue 12: node/stream came from the payload: site-a could push telemetry as site-b.
    with pytest.raises(Malformed) as refused:
        parser.parse(f"{PREFIX}/site-a/telemetry/drone".encode(), telemetry("site-b", "drone"), time.time())
    assert refused.value.reason == WRONG_TOPIC and "site-b" in refused.value.detail
    with pytest.raises(Malformed) as refused:
        parser.parse(f"{PREFIX}/site-a/telemetry/drone".encode(), telemetry("site-a", "other"), time.time())
    assert refused.value.reason == WRONG_TOPIC and "other" in refused.value.detail


@pytest.mark.parametrize("section", ["events", "status"])
def test_a_stored_message_claiming_another_node_is_refused(section: str) -> None:
    parser = MessageParser(PREFIX, snapshots=True)
    message = make_event("e1", node="site-b") if section == "events" else make_status(node="site-b")
    with pytest.raises(Malformed) as refused:
        parser.parse(f"{PREFIX}/site-a/{section}/cam1".encode(), message.model_dump_json().encode(), time.time())
    assert refused.value.reason == WRONG_TOPIC


def test_a_node_cannot_attach_its_picture_to_another_nodes_event(tmp_path: Path) -> None:
    # One message per batch: each is stored in its arrival order (in one batch, the event is stored first).
    settings = {"database_url": f"sqlite:///{tmp_path}/g.sqlite", "batch_linger_s": 0, "batch_size": 1}
    config = GroundStationConfig.model_validate(settings)
    parser = MessageParser(PREFIX, snapshots=True)
    event = make_event("ev-a", node="site-a", stream="cam1")
    sequence = [
        (f"{PREFIX}/site-b/snapshots/cam1/ev-a", JPEG_B),  # before the event: not known to be foreign yet
        (f"{PREFIX}/site-a/events/cam1", event.model_dump_json().encode()),
        (f"{PREFIX}/site-a/snapshots/cam1/ev-a", JPEG_A),  # the event's own node: replaces site-b's
        (f"{PREFIX}/site-b/snapshots/cam1/ev-a", JPEG_B),  # after it: refused and counted
        (f"{PREFIX}/site-a/snapshots/cam2/ev-a", JPEG_B),  # right node, wrong stream: refused too
    ]
    with Store(config.database_url) as store:
        items = [item_for(parser, topic, payload, mid) for mid, (topic, payload) in enumerate(sequence)]
        writer, acked, errors = run_writer(config, store, items)
        assert errors == [] and sorted(acked) == list(range(len(sequence)))
        snapshots = Snapshots(store.engine)
        assert snapshots.get("ev-a") == JPEG_A
        assert writer._malformed.counts() == {WRONG_TOPIC: 2}


def test_a_foreign_snapshot_stored_before_its_event_is_never_served(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path}/g.sqlite") as store:
        snapshots = Snapshots(store.engine)
        assert snapshots.put("ev-a", "site-b", "cam1", JPEG_B)
        store.write_batch([Received(make_event("ev-a", node="site-a"), time.time(), "{}")])
        # site-a's event exists now: site-b's earlier picture is not its snapshot
        assert snapshots.get("ev-a") is None and snapshots.which_exist(["ev-a"]) == set()
        with pytest.raises(ForeignSnapshotError):
            snapshots.put("ev-a", "site-b", "cam1", JPEG_B)
        assert snapshots.put("ev-a", "site-a", "cam1", JPEG_A)
        assert snapshots.get("ev-a") == JPEG_A and snapshots.which_exist(["ev-a"]) == {"ev-a"}
