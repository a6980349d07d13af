"""Fuzz targets (hypothesis) carry the `fuzz` marker: `pytest -m fuzz` runs only them, `-m "not fuzz"` skips
them; SMARTEYE_FUZZ_EXAMPLES raises the examples per target for a longer run (docs/fuzzing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: bounded hypothesis fuzz targets under tests/fuzz (set automatically)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FUZZ_DIR in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.fuzz)
