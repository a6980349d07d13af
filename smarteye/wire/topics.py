"""The versioned MQTT topic scheme (documented in docs/mqtt.md)."""

from __future__ import annotations


def events_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/events/{stream}"


def status_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/status/{stream}"


def availability_topic(prefix: str, node: str) -> str:
    return f"{prefix}/{node}/availability"


def telemetry_topic(prefix: str, node: str, stream: str) -> str:
    return f"{prefix}/{node}/telemetry/{stream}"


def snapshot_topic(prefix: str, node: str, stream: str, event_id: str) -> str:
    """Binary JPEG payload: the frame in which the object was confirmed (its `new` event)."""
    return f"{prefix}/{node}/snapshots/{stream}/{event_id}"
