"""Configuration models: the single source of truth for validation, defaults and docs."""

from edge.config.detector import DetectorConfig
from edge.config.mqtt import MqttConfig
from edge.config.node import ConfigError, EdgeConfig, load_config, parse_config
from edge.config.source import SourceConfig, SourceKind
from edge.config.tracking import EventsConfig, TrackerConfig

__all__ = [
    "ConfigError",
    "DetectorConfig",
    "EdgeConfig",
    "EventsConfig",
    "MqttConfig",
    "SourceConfig",
    "SourceKind",
    "TrackerConfig",
    "load_config",
    "parse_config",
]
