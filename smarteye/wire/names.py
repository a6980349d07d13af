"""Node and stream names: they become MQTT topic levels and URL path segments, so both sides check them
with the same rule."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from pydantic import AfterValidator

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fullmatch: letters, digits, '_' and '-', 1..64 characters


def check_name(value: str, what: str) -> str:
    """`value` if it is a valid node/stream/zone/rule name, else ValueError naming `what` and the rule."""
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-64 letters, digits, '_' or '-' (it is used in MQTT topics)")
    return value


def valid_name(what: str) -> AfterValidator:
    """A field annotation, `Annotated[str, valid_name("zone name")]`, so every model that holds a name checks
    it with `check_name` and says which name it was."""
    return AfterValidator(lambda value: check_name(value, what))


def repeated(values: Iterable[str]) -> str:
    """The values given more than once, sorted and comma-separated ("" when each is unique): an error names
    every repeat at once, not just the first."""
    return ", ".join(sorted(value for value, count in Counter(values).items() if count > 1))
