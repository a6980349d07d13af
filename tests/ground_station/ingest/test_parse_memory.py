"""What parsing and storing events leaves alive (issue 12 soak follow-up).

The soak saw the station's heap grow ~80 bytes per stored event, allocated under parse.py's
`model_validate_json`.  The keeper is pydantic-core's process-wide string cache (JSON strings of 2-63
bytes, 16 384 slots): each event's unique `id`/`event_id` stays cached until a later string takes its
slot.  It is bounded, so not a leak; these tests pin that down: once that cache is flushed nothing the
parser and the writer (storing them, pushing them live) made for N distinct events is still alive, and
without a flush what they leave alive stops growing with N at the cache's size.  tracemalloc attributes
each block to its allocation's traceback, so "allocated under parse.py and still alive" is measured
directly; a keeper downstream (e.g. of the live push's payload text) fails the first test.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pydantic_core
import pytest

from ground_station.config import GroundStationConfig
from ground_station.ingest import parse
from ground_station.ingest.handoff import Handoff, Item
from ground_station.ingest.malformed import MalformedCounter
from ground_station.ingest.parse import MessageParser
from ground_station.ingest.writer import Writer
from ground_station.store import Received, Store
from smarteye.wire.topics import events_topic
from tests.support.factories import make_event

# Thousands of events through the writer and SQLite under tracemalloc (~20 s): whole-component, not in the fast
# subset.
pytestmark = [pytest.mark.timeout(120), pytest.mark.e2e]

PREFIX = "mem-test/v1"
STRING_CACHE_SLOTS = 16_384  # pydantic-core's (jiter's) string cache
LONGEST_CACHED = 63  # longer strings are not cached


@pytest.fixture
def traced() -> Iterator[None]:
    """tracemalloc on (a few frames: parse.py is the caller of model_validate_json, just above pydantic's)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(4)
    try:
        yield
    finally:
        if not was_tracing:
            tracemalloc.stop()


def alive_from_parse() -> int:
    """Bytes allocated with parse.py in their traceback that are still alive."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, parse.__file__, all_frames=True)])
    return sum(trace.size for trace in snapshot.traces)


def flush_string_cache() -> None:
    """Evict every string in pydantic-core's cache (it has no clear call): parse many unique short ones (a
    slot is missed by all 150 000 with odds of (1 - 1/16384) ** 150000 ~ 1e-4)."""
    pydantic_core.from_json(("[" + ",".join(f'"flush-{i:026x}"' for i in range(150_000)) + "]").encode())


def distinct_events(count: int, zones: int = 0) -> list[tuple[bytes, bytes]]:
    """(topic, payload) of `count` events, each of its own object; `zones` extra unique strings in each."""
    topic = events_topic(PREFIX, "node1", "cam1").encode()
    out = []
    for i in range(count):
        event = make_event(seq=i % 2)
        if zones:
            event.zones = [f"zone-{uuid.uuid4().hex}" for _ in range(zones)]
        out.append((topic, event.model_dump_json().encode()))
    return out


def store_all(tmp_path: Path, messages: Sequence[tuple[bytes, bytes]], keep: list[str] | None = None) -> int:
    """Parse, hand over and store `messages` as the aggregator does (the writer pushing each one live to a
    no-op), then drop every reference; `keep` gets each message's id (a deliberate keeper). Events stored."""
    config = GroundStationConfig.model_validate(
        {"database_url": f"sqlite:///{tmp_path}/ground.sqlite", "batch_linger_s": 0, "retention_days": None}
    )
    parser = MessageParser(PREFIX, snapshots=False)
    handoff = Handoff(len(messages) + 1)
    items = []
    for mid, (topic, payload) in enumerate(messages):
        received = parser.parse(topic, payload, time.time())
        assert isinstance(received, Received)
        if keep is not None:
            keep.append(received.message.id)
        items.append(Item(received, None, mid % 65535 + 1, 1, 1))
    handoff.put(items, timeout=0)
    handoff.close()
    del items, received
    pushed = threading.Event()
    errors: list[str] = []
    with Store(config.database_url) as store:
        writer = Writer(config, store, None, handoff, lambda _c, _i: True, MalformedCounter(),
                        lambda *_: pushed.set(), errors.append)  # fmt: skip
        writer.start()
        writer.join(60)
        assert not writer.is_alive() and errors == [] and pushed.is_set()
        return writer.stored


def test_nothing_but_the_string_cache_keeps_what_parse_made(tmp_path: Path, traced: None) -> None:
    count = 2000
    messages = distinct_events(count)
    flush_string_cache()
    before = alive_from_parse()

    # The measurement sees a per-event keeper: one that holds each message's id (~81 bytes), as the
    # suspected dict keyed by event would, survives the flush.
    kept: list[str] = []
    assert store_all(tmp_path / "a", messages, kept) == count
    flush_string_cache()
    assert alive_from_parse() - before >= count * 60
    del kept

    # Without one, what parse.py allocated for the stored events is all gone once the cache is flushed.
    assert store_all(tmp_path / "b", distinct_events(count)) == count
    flush_string_cache()
    left = alive_from_parse() - before
    assert left < count * 2, f"{left} bytes ({left / count:.1f} per event) outlive pydantic's string cache"


def test_what_parse_leaves_alive_is_bounded_by_the_string_cache(traced: None) -> None:
    """Without a flush: 16 unique strings per event, so 6000 events would keep ~8 MB if a keeper held
    them; the cache holds at most its 16 384 strings, so what stays alive stops growing."""
    parser = MessageParser(PREFIX, snapshots=False)
    bound = STRING_CACHE_SLOTS * (sys.getsizeof("x" * LONGEST_CACHED) + 8)  # + the allocator's rounding
    sizes = []
    for _ in range(3):
        for topic, payload in distinct_events(2000, zones=14):
            parser.parse(topic, payload, time.time())
        sizes.append(alive_from_parse())
    assert max(sizes) <= bound, sizes
    assert sizes[-1] - sizes[1] < 0.05 * sizes[1], f"still growing after the cache filled: {sizes}"
