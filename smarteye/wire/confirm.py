"""End-to-end storage confirmations: the digest that names a message on both sides of the broker.

The edge keeps a spooled message until the station says it is finished with it (stored, a duplicate, or
refused as bad data); a broker PUBACK only says the broker has it in memory, which a broker crash loses.
The station names each message by an 8-byte digest of its topic and payload exactly as received, and
publishes the digests of a committed batch on `<prefix>/<node>/stored` (docs/mqtt.md).  Both sides call
`message_digest`, so they cannot disagree on what a digest is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

DIGEST_SIZE = 8
MAX_CONFIRMATION_BYTES = 64 * 1024  # one `stored` message: 8192 digests (a large batch is sent in chunks)


def message_digest(topic: str | bytes, payload: bytes) -> bytes:
    """The 8-byte blake2b of topic bytes + NUL + payload (a topic never holds NUL: the split is unambiguous)."""
    raw = topic.encode() if isinstance(topic, str) else topic
    h = hashlib.blake2b(raw, digest_size=DIGEST_SIZE)
    h.update(b"\0")
    h.update(payload)
    return h.digest()


def digest_key(digest: bytes) -> int:
    """The digest as a signed 64-bit integer: how the edge's SQLite spool indexes it compactly."""
    return int.from_bytes(digest, "big", signed=True)


def split_digests(payload: bytes) -> list[bytes]:
    """The digests in a `stored` payload; ValueError if it is not a whole number of them."""
    if len(payload) % DIGEST_SIZE:
        raise ValueError(f"a confirmation is a multiple of {DIGEST_SIZE} bytes, not {len(payload)}")
    return [payload[i : i + DIGEST_SIZE] for i in range(0, len(payload), DIGEST_SIZE)]


def confirmation_payloads(digests: Iterable[bytes], max_bytes: int = MAX_CONFIRMATION_BYTES) -> Iterator[bytes]:
    """The `stored` payloads for `digests`, each at most `max_bytes` (rounded down to whole digests)."""
    per_chunk = max(1, max_bytes // DIGEST_SIZE)
    chunk: list[bytes] = []
    for digest in digests:
        chunk.append(digest)
        if len(chunk) == per_chunk:
            yield b"".join(chunk)
            chunk = []
    if chunk:
        yield b"".join(chunk)
