"""A source's own rules in the edge config: validated with the wire model (fields named with their path), and
always version 0 so that a version pushed by the ground station (1 and up) is told apart."""

from __future__ import annotations

import pytest

from edge.config import ConfigError, parse_config


def _source(rules: dict) -> dict:
    return {"sources": [{"name": "cam", "url": "a.mp4", "rules": rules}]}


def test_rules_load_with_the_source() -> None:
    zone = {"name": "yard", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}
    config = parse_config(_source({"zones": [zone], "rules": [{"name": "r", "kind": "enter", "zone": "yard"}]}))
    rules = config.sources[0].rules
    assert rules is not None and rules.version == 0 and rules.rules[0].zone == "yard"


def test_bad_rules_are_named_with_their_path() -> None:
    zone = {"name": "yard", "points": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]}
    named = r"config: sources\[0\]\.rules\.zones\[0\]: point 1 \(1.5, 0.1\) is outside 0..1"
    with pytest.raises(ConfigError, match=named):
        parse_config(_source({"zones": [zone]}))
    with pytest.raises(ConfigError, match=r"rules\.version must be 0 here"):
        parse_config(_source({"version": 3}))
