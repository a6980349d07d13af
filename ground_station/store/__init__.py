"""Durable store of the ground station (SQLAlchemy Core; SQLite or PostgreSQL, same code)."""

from ground_station.store.queries import BadCursorError
from ground_station.store.records import (
    AlertMedia,
    AlertPage,
    AuditEntry,
    Count,
    CountsPoint,
    Delivery,
    EventPage,
    NodeState,
    PurgeResult,
    Received,
    RulesVersion,
    Stats,
    StoredAlert,
    StoredEvent,
    StreamHealth,
    WriteResult,
)
from ground_station.store.schema import SCHEMA_VERSION
from ground_station.store.store import Store

__all__ = [
    "SCHEMA_VERSION",
    "AlertMedia",
    "AlertPage",
    "AuditEntry",
    "BadCursorError",
    "Count",
    "CountsPoint",
    "Delivery",
    "EventPage",
    "NodeState",
    "PurgeResult",
    "Received",
    "RulesVersion",
    "Stats",
    "Store",
    "StoredAlert",
    "StoredEvent",
    "StreamHealth",
    "WriteResult",
]
