"""Node and stream names: they become MQTT topic levels and URL path segments, so both sides check them
with the same rule."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fullmatch: letters, digits, '_' and '-', 1..64 characters
