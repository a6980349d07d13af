"""Durable store of the ground station (SQLAlchemy Core; SQLite or PostgreSQL, same code)."""

from ground_station.store.queries import BadCursorError
from ground_station.store.records import (
    Count,
    EventPage,
    NodeState,
    PurgeResult,
    Received,
    Stats,
    StoredEvent,
    StreamHealth,
)
from ground_station.store.schema import SCHEMA_VERSION
from ground_station.store.store import Store

__all__ = [
    "SCHEMA_VERSION",
    "BadCursorError",
    "Count",
    "EventPage",
    "NodeState",
    "PurgeResult",
    "Received",
    "Stats",
    "Store",
    "StoredEvent",
    "StreamHealth",
]
