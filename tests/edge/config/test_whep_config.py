"""The edge's WHEP endpoint config: a token beyond localhost, CORS only for listed origins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.config.video import WhepServerConfig


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "edge.example.org"])
def test_whep_beyond_localhost_without_a_token_is_a_config_error_naming_the_key(host: str) -> None:
    with pytest.raises(ValidationError) as error:
        WhepServerConfig(host=host)
    assert "video.whep.token" in str(error.value) and repr(host) in str(error.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_whep_on_loopback_needs_no_token(host: str) -> None:
    assert WhepServerConfig(host=host).token is None


def test_whep_beyond_localhost_with_a_token_and_disabled_whep_are_accepted() -> None:
    assert WhepServerConfig(host="0.0.0.0", token="t" * 24).token == "t" * 24
    assert not WhepServerConfig(host="0.0.0.0", enabled=False).enabled


def test_short_tokens_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValidationError) as error:
        WhepServerConfig(host="0.0.0.0", token="hunter2")
    assert "token" in str(error.value) and "hunter2" not in str(error.value)


def test_cors_origins_default_to_none_and_refuse_wildcards_and_paths() -> None:
    assert WhepServerConfig().cors_origins == []
    assert WhepServerConfig(cors_origins=["HTTPS://Player.Example.org/"]).cors_origins == ["https://player.example.org"]
    for bad in ("*", "https://player.example.org/app", "player.example.org", "ftp://x", "http://x:99999"):
        with pytest.raises(ValidationError) as error:
            WhepServerConfig(cors_origins=[bad])
        assert "cors_origins" in str(error.value)
