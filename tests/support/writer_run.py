"""Drive the station's real ingest writer without a broker: items made the way the network thread makes
them (parse, then one item per PUBLISH), written to the end by a real Writer on a real store."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from ground_station.config import GroundStationConfig
from ground_station.ingest.handoff import Handoff, Item
from ground_station.ingest.malformed import Malformed, MalformedCounter
from ground_station.ingest.parse import Cleared, LiveTelemetry, MessageParser, Snapshot
from ground_station.ingest.writer import Writer
from ground_station.snapshots import Snapshots
from ground_station.store import AlertMedia, Received, Store


def item_for(parser: MessageParser, topic: str, payload: bytes, mid: int) -> Item:
    """What the network thread hands over for one PUBLISH (see loop.py): the parsed thing, or just the ack."""
    try:
        parsed = parser.parse(topic.encode(), payload, time.time())
    except Malformed:
        return Item(None, None, mid, 1, 1)
    if isinstance(parsed, Received):
        return Item(parsed, None, mid, 1, 1)
    if isinstance(parsed, Cleared):
        return Item(None, parsed, mid, 1, 1)
    if isinstance(parsed, Snapshot):
        return Item(None, None, mid, 1, 1, snapshot=parsed)
    if isinstance(parsed, AlertMedia):
        return Item(None, None, mid, 1, 1, media=parsed)
    assert isinstance(parsed, LiveTelemetry)
    return Item(None, None, mid, 1, 1)


def run_writer(config: GroundStationConfig, store: Store, items: list[Item]) -> tuple[Writer, list[int], list[str]]:
    """Write `items` to the end; the writer must finish on its own (a retried poison batch never would)."""
    handoff = Handoff(10_000)
    handoff.put(items, timeout=0)
    handoff.close()
    acked: list[int] = []
    errors: list[str] = []

    def acknowledge(connection: int, batch: Sequence[Item]) -> bool:
        acked.extend(item.mid for item in batch)
        return True

    malformed = MalformedCounter()
    writer = Writer(config, store, Snapshots(store.engine), handoff, acknowledge, malformed, None, errors.append)
    writer.start()
    writer.join(30)
    if writer.is_alive():
        writer.abandon()
        writer.join(5)
        pytest.fail(f"the writer is stuck retrying: {errors[-3:]}")
    return writer, acked, errors
