"""Fixtures shared by the ground station's video relay and video API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.video_station import VideoStation, open_video_station


@pytest.fixture
def video_station(tmp_path: Path) -> Iterator[VideoStation]:
    """A ground station app with a video relay, node e1's edge token and a viewer token."""
    with open_video_station(tmp_path) as station:
        yield station
