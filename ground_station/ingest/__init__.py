"""Ingest: MQTT → store.  One role per module; `Aggregator` (aggregator.py) puts them together."""

from ground_station.ingest.aggregator import Aggregator, AggregatorStats

__all__ = ["Aggregator", "AggregatorStats"]
