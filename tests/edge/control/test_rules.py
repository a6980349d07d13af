"""Pushed rules: applied when valid for the stream, refused with the field named otherwise (the running
rules stay), cleared back to the YAML's rules, and never taken for another node or stream."""

from __future__ import annotations

from edge.control.rules import RulesListener
from smarteye.wire.messages import RulesConfig
from smarteye.wire.rules import RuleSet
from smarteye.wire.topics import rules_topic

PREFIX = "smarteye/v1"
SQUARE = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]


class Stage:
    """Stands in for a stream's rules stage (the real one is tested in tests/edge/rules): records what the
    listener did to it."""

    def __init__(self, rules: RuleSet | None) -> None:
        self.configured = self.rules = rules
        self.error: str | None = None
        self.applied = 0

    @property
    def version(self) -> int | None:
        return self.rules.version if self.rules else None

    def apply(self, rules: RuleSet) -> None:
        self.rules, self.error = rules, None
        self.applied += 1

    def refuse(self, error: str) -> None:
        self.error = error


def _push(version: int, *, stream: str = "cam", labels: list[str] | None = None, space: str = "image") -> bytes:
    points = SQUARE if space == "image" else [(51.0, 7.0), (51.0, 7.01), (51.01, 7.01)]
    rules = RuleSet.model_validate({
        "version": version,
        "zones": [{"name": "yard", "space": space, "points": points, "filter": {"labels": labels}}],
        "rules": [{"name": "in-yard", "kind": "enter", "zone": "yard"}],
    })  # fmt: skip
    return RulesConfig(node="n1", stream=stream, rules=rules, author="sup", time=1.0).model_dump_json().encode()


def _listener(yaml: RuleSet | None = None) -> tuple[RulesListener, Stage, list[str]]:
    stage, changed = Stage(yaml), []
    listener = RulesListener("n1", PREFIX, {"cam": stage}, {"person", "car"}, {"cam": False}, changed.append)
    return listener, stage, changed


def test_a_valid_push_replaces_the_yaml_rules_and_is_reported() -> None:
    listener, stage, changed = _listener(RuleSet())
    listener.handle(rules_topic(PREFIX, "n1", "cam"), _push(3, labels=["person"]))
    assert stage.version == 3 and stage.rules.zones[0].name == "yard"
    assert stage.error is None and changed == ["cam"]


def test_a_bad_push_is_refused_naming_the_field_and_the_running_rules_stay() -> None:
    listener, stage, _ = _listener()
    topic = rules_topic(PREFIX, "n1", "cam")
    listener.handle(topic, _push(2))
    listener.handle(topic, _push(3, labels=["persn"]))
    assert stage.version == 2
    assert stage.error == "pushed rules: rules.zones[0].filter.labels: unknown label 'persn'"
    listener.handle(topic, _push(4, space="geo"))  # this stream has no geolocation
    assert stage.version == 2 and "zones[0].space: geo needs a geolocated stream" in stage.error
    listener.handle(topic, b"{not json")
    assert stage.version == 2 and stage.error.startswith("pushed rules: ")
    listener.handle(topic, _push(5, stream="other"))
    assert stage.version == 2 and "do not match the topic" in stage.error
    assert listener.refused == 4
    listener.handle(topic, _push(6))
    assert stage.version == 6 and stage.error is None


def test_an_empty_retained_payload_returns_to_the_yaml_rules() -> None:
    yaml = RuleSet.model_validate({"zones": [{"name": "gate", "points": SQUARE}]})
    listener, stage, _ = _listener(yaml)
    topic = rules_topic(PREFIX, "n1", "cam")
    listener.handle(topic, _push(7))
    listener.handle(topic, b"")
    assert stage.rules is yaml and stage.version == 0


def test_other_nodes_and_unknown_streams_are_ignored() -> None:
    listener, stage, changed = _listener()
    listener.handle(rules_topic(PREFIX, "n2", "cam"), _push(1))
    listener.handle(rules_topic(PREFIX, "n1", "nope"), _push(1, stream="nope"))
    listener.handle("smarteye/v1/n1/rules", _push(1))
    assert stage.rules is None and changed == []


def test_a_re_sent_version_is_not_applied_again() -> None:
    """The station re-publishes a version until the broker confirms it: the stream keeps its zones' state."""
    listener, stage, changed = _listener()
    topic = rules_topic(PREFIX, "n1", "cam")
    listener.handle(topic, _push(2))
    listener.handle(topic, _push(2))
    assert stage.applied == 1 and stage.version == 2 and changed == ["cam", "cam"]
