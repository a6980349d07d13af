"""video.live: how boxes reach viewers, per node and per stream, and the error for a mode that does not exist."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.config.video import VideoConfig


def test_page_is_the_default_and_a_stream_can_keep_its_boxes_burned_in() -> None:
    config = VideoConfig.model_validate({"live": {"streams": {"qgc": "burn_in"}}})
    assert config.live.mode("cam") == "page"
    assert config.live.mode("qgc") == "burn_in"
    assert VideoConfig.model_validate({"live": {"boxes": "burn_in"}}).live.mode("cam") == "burn_in"


def test_a_mode_that_does_not_exist_is_named_in_the_error() -> None:
    with pytest.raises(ValidationError, match=r"live\.boxes[\s\S]*'page' or 'burn_in'"):
        VideoConfig.model_validate({"live": {"boxes": "overlay"}})
