"""Rules edited at the station: what changed between two versions (for the audit log) and pushing the
current version of each stream to its edge node (retained MQTT)."""

from ground_station.rules.changes import describe_changes
from ground_station.rules.push import RetainedPublisher, RulesPush, SavedRules

__all__ = ["RetainedPublisher", "RulesPush", "SavedRules", "describe_changes"]
