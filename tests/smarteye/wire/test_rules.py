"""Rule input is refused with a message naming the field: a self-intersecting polygon, points outside
0..1, a rule on a missing zone, an unknown label, a geofence on a stream without geolocation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smarteye.wire.rules import RuleKind, RuleSet, Space

SQUARE = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]


def _refusal(data: dict) -> str:
    with pytest.raises(ValidationError) as error:
        RuleSet.model_validate(data)
    return str(error.value)


def test_a_valid_set_in_both_spaces() -> None:
    rules = RuleSet.model_validate(
        {
            "zones": [
                {"name": "yard", "points": SQUARE, "filter": {"labels": ["person"], "min_time_s": 1}},
                {"name": "site", "space": "geo", "points": [(51.0, 7.0), (51.0, 7.01), (51.01, 7.01)]},
            ],
            "lines": [{"name": "gate", "points": [(0.5, 0.0), (0.5, 1.0)]}],
            "rules": [
                {"name": "in-yard", "kind": "enter", "zone": "yard"},
                {"name": "gate-in", "kind": "cross", "line": "gate", "direction": "in"},
                {"name": "dwell", "kind": "loiter", "zone": "yard", "duration_s": 30},
                {"name": "geofence", "kind": "inside", "zone": "site", "severity": "critical"},
            ],
        }
    )
    assert rules.spaces() == {Space.IMAGE, Space.GEO}
    assert [r.kind for r in rules.rules] == [RuleKind.ENTER, RuleKind.CROSS, RuleKind.LOITER, RuleKind.INSIDE]
    rules.check_against({"person", "car"}, geolocated=True)


@pytest.mark.parametrize(
    ("zone", "problem"),
    [
        ({"points": [(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)]}, "the polygon is not simple: Self-intersection"),
        ({"points": [(0.1, 0.1), (1.2, 0.1), (0.5, 0.9)]}, "point 1 (1.2, 0.1) is outside 0..1"),
        ({"points": [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)]}, "the polygon has no area"),
        ({"points": [(0.1, 0.1), (0.5, 0.5)]}, "at least 3 items"),
        ({"space": "geo", "points": [(95.0, 7.0), (51.0, 7.0), (51.0, 7.1)]}, "is not a (lat, lon)"),
        ({"name": "bad name!", "points": SQUARE}, "zone name 'bad name!' must be"),
    ],
)
def test_bad_zones_are_refused_naming_the_problem(zone: dict, problem: str) -> None:
    assert problem in _refusal({"zones": [{"name": "z", **zone}]})


def test_rules_must_name_existing_zones_and_fit_their_kind() -> None:
    zones = [{"name": "yard", "points": SQUARE}]
    assert "rules[0].zone: no zone named 'gate'" in _refusal(
        {"zones": zones, "rules": [{"name": "r", "kind": "enter", "zone": "gate"}]}
    )
    assert "a cross rule watches a line" in _refusal({"zones": zones, "rules": [{"name": "r", "kind": "cross",
                                                                                 "zone": "yard"}]})  # fmt: skip
    assert "a loiter rule needs a time" in _refusal({"zones": zones, "rules": [{"name": "r", "kind": "loiter",
                                                                                "zone": "yard"}]})  # fmt: skip
    assert "repeated: yard" in _refusal({"zones": zones * 2})


def test_what_only_the_stream_knows_is_checked_against_it() -> None:
    rules = RuleSet.model_validate(
        {"zones": [{"name": "yard", "points": SQUARE, "filter": {"labels": ["persn"]}}],
         "rules": [{"name": "r", "kind": "enter", "zone": "yard"}]}
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"zones\[0\].filter.labels: unknown label 'persn'"):
        rules.check_against({"person"}, geolocated=False)
    geofence = RuleSet.model_validate({"zones": [{"name": "site", "space": "geo",
                                                  "points": [(51.0, 7.0), (51.0, 7.01), (51.01, 7.01)]}]})  # fmt: skip
    with pytest.raises(ValueError, match=r"zones\[0\].space: geo needs a geolocated stream"):
        geofence.check_against({"person"}, geolocated=False)
    geofence.check_against({"person"}, geolocated=True)
