"""Configuration models: the single source of truth for validation, defaults and docs."""

from edge.config.detector import DetectorConfig
from edge.config.node import EdgeConfig, load_config, parse_config
from edge.config.source import SourceConfig, SourceKind
from edge.config.tracking import EventsConfig, TrackerConfig
from smarteye.config.loading import ConfigError
from smarteye.config.mqtt import MqttConfig

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
