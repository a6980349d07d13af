"""Rules pushed by the ground station: applied between frames without a restart, the version reported back.

The station publishes each stream's `RulesConfig` retained (QoS 1) on `<prefix>/<node>/rules/<stream>`; the
node subscribes to its own node's topics on its MQTT link, so it also gets the current rules at every
(re)connect. Precedence: a pushed version (>= 1) replaces the stream's YAML rules (version 0); an empty
retained payload (the station cleared the stream's rules) returns the stream to its YAML rules. A payload
that is not valid for the stream is refused with the field named in `StreamStatus.rules_error`, and the
rules already running stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from pydantic import ValidationError

from smarteye.config.loading import format_validation_error
from smarteye.wire.messages import RulesConfig
from smarteye.wire.rules import RuleSet
from smarteye.wire.topics import ANY, Section, TopicError, TopicParser, rules_topic

log = logging.getLogger("edge.control.rules")


class RulesTarget(Protocol):
    """The part of a stream's rules stage (edge/rules/stage.py) the listener drives."""

    configured: RuleSet | None

    @property
    def version(self) -> int | None: ...

    def apply(self, rules: RuleSet) -> None: ...

    def refuse(self, error: str) -> None: ...

    @property
    def error(self) -> str | None: ...


class Subscriber(Protocol):
    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None: ...


class RulesListener:
    """Validates and applies pushed rules per stream; the stage keeps why the last push was refused."""

    def __init__(
        self,
        node: str,
        topic_prefix: str,
        stages: Mapping[str, RulesTarget],
        labels: set[str],
        geolocated: Mapping[str, bool],
        on_change: Callable[[str], None],
    ) -> None:
        self.node, self.prefix, self.stages = node, topic_prefix, stages
        self.labels, self.geolocated, self.on_change = labels, geolocated, on_change
        self.refused = 0
        self._parser = TopicParser(topic_prefix)

    def attach(self, link: Subscriber) -> None:
        link.subscribe(rules_topic(self.prefix, self.node, ANY), self.handle)

    def handle(self, topic: str, payload: bytes) -> None:
        """One retained or live rules message (on the MQTT network thread: validation is quick)."""
        try:
            parsed = self._parser.parse(topic)
        except TopicError as error:
            log.warning("rules on %s ignored: %s", topic, error)
            return
        stream = parsed.stream
        if parsed.section is not Section.RULES or parsed.node != self.node or stream not in self.stages:
            log.warning("rules on %s ignored: no stream %r on node %s", topic, stream, self.node)
            return
        try:
            rules = self._rules_from(stream, payload)
        except ValueError as error:
            self.refused += 1
            self.stages[stream].refuse(str(error))
            log.error("stream %s: pushed rules refused, still running version %s: %s", stream,
                      self.stages[stream].version, error)  # fmt: skip
        else:
            stage = self.stages[stream]
            if rules.version >= 1 and rules.version == stage.version and stage.error is None:
                log.debug("stream %s: rules version %d re-sent; already running", stream, rules.version)
            else:  # (a re-sent version is not re-applied: that would restart its zones' and alerts' state)
                stage.apply(rules)
                log.info("stream %s: rules version %d applied", stream, rules.version)
        self.on_change(stream)

    def _rules_from(self, stream: str, payload: bytes) -> RuleSet:
        if not payload:  # cleared at the station: back to the YAML's rules
            return self.stages[stream].configured or RuleSet()
        try:
            pushed = RulesConfig.model_validate_json(payload)
        except ValidationError as error:
            raise ValueError(format_validation_error(error, "pushed rules").replace("\n", "; ")) from None
        if pushed.node != self.node or pushed.stream != stream:
            raise ValueError(f"pushed rules: node/stream {pushed.node}/{pushed.stream} do not match the topic")
        if pushed.rules.version < 1:
            raise ValueError("pushed rules: rules.version must be 1 or more (0 is the node's own YAML)")
        try:
            pushed.rules.check_against(self.labels, self.geolocated.get(stream, False))
        except ValueError as error:
            raise ValueError(f"pushed rules: rules.{error}") from None
        return pushed.rules
