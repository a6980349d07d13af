"""What the audit log says a rules edit changed."""

from __future__ import annotations

from ground_station.rules import describe_changes
from smarteye.wire.rules import Line, Rule, RuleSet, Severity, Zone

DOOR = Zone(name="door", points=[(0.1, 0.1), (0.5, 0.1), (0.5, 0.6)])
GATE = Line(name="gate", points=((0.0, 0.5), (1.0, 0.5)))
ENTER = Rule(name="door-enter", kind="enter", zone="door")
CROSS = Rule(name="gate-in", kind="cross", line="gate", direction="in")


def test_additions_removals_and_changed_fields_are_named() -> None:
    first = RuleSet(zones=[DOOR], rules=[ENTER])
    assert describe_changes(None, first) == ["zone 'door' added", "rule 'door-enter' added"]
    moved = DOOR.model_copy(update={"points": [(0.2, 0.1), (0.5, 0.1), (0.5, 0.6)]})
    louder = ENTER.model_copy(update={"severity": Severity.CRITICAL, "cooldown_s": 5})
    second = RuleSet(zones=[moved], lines=[GATE], rules=[louder, CROSS], counts_interval_s=30, clip={"pre_s": 2})
    assert describe_changes(first, second) == [
        "zone 'door' changed: points",
        "line 'gate' added",
        "rule 'door-enter' changed: severity, cooldown_s",
        "rule 'gate-in' added",
        "clip settings changed: pre_s",
        "counts interval 10 s -> 30 s",
    ]
    assert describe_changes(second, RuleSet(zones=[moved])) == ["line 'gate' removed", "rule 'door-enter' removed",
                                                                "rule 'gate-in' removed", "clip settings changed: "
                                                                "pre_s", "counts interval 30 s -> 10 s"]  # fmt: skip
    assert describe_changes(first, first.model_copy(update={"version": 4})) == ["no change (saved again)"]
    assert describe_changes(first, None) == ["rules cleared: the stream runs its node's own rules"]
    assert describe_changes(None, None) == []
