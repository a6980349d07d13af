"""The confirmation digest and the `stored` topic, shared by the edge and the station."""

from __future__ import annotations

import hashlib

import pytest

from smarteye.wire.confirm import DIGEST_SIZE, confirmation_payloads, message_digest, split_digests
from smarteye.wire.topics import Section, Topic, parse_topic, stored_topic


def test_digest_is_blake2b_of_topic_nul_payload_and_same_for_str_and_bytes() -> None:
    expected = hashlib.blake2b(b"p/n/events/c\0{}", digest_size=8).digest()
    assert message_digest("p/n/events/c", b"{}") == message_digest(b"p/n/events/c", b"{}") == expected
    # The NUL separator: moving a byte between topic and payload changes the digest.
    assert message_digest("p/n/events/ca", b"b") != message_digest("p/n/events/c", b"ab")


def test_payloads_are_chunked_whole_digests_and_split_back() -> None:
    digests = [message_digest("t", str(i).encode()) for i in range(10)]
    chunks = list(confirmation_payloads(digests, max_bytes=3 * DIGEST_SIZE + 5))
    assert [len(c) // DIGEST_SIZE for c in chunks] == [3, 3, 3, 1]
    assert [d for c in chunks for d in split_digests(c)] == digests
    with pytest.raises(ValueError, match="multiple of 8"):
        split_digests(b"123")


def test_stored_topic_is_in_the_scheme() -> None:
    topic = stored_topic("smarteye/v1", "site-a")
    assert topic == "smarteye/v1/site-a/stored"
    assert parse_topic("smarteye/v1", topic) == Topic(Section.STORED, "site-a")
