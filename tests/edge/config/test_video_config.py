"""The video section of the node configuration: UDP output URLs and the uplink URL and token, with errors
that name the field (and never echo the token)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from edge.config.node import parse_config
from edge.config.video import UplinkConfig, VideoConfig
from smarteye.config.loading import ConfigError


def _config(video: dict[str, Any]) -> Any:
    return parse_config({"sources": [{"name": "cam", "url": "x.mp4"}], "video": video}, "cfg")


@pytest.mark.parametrize(
    ("url", "normalised"),
    [("udp://239.0.0.1:5600", "udp://239.0.0.1:5600"), ("10.0.0.5:5600", "udp://10.0.0.5:5600")],
)
def test_udp_output_urls_are_normalised(url: str, normalised: str) -> None:
    """A bare host:port is taken as UDP (what QGroundControl users type)."""
    assert _config({"udp_outputs": {"cam": url}}).video.udp_outputs == {"cam": normalised}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("rtp://10.0.0.5:5600", "must be udp://host:port (got scheme 'rtp')"),
        ("udp://10.0.0.5", "with a port"),
        ("udp://10.0.0.5:0", "with a port"),
        ("udp://10.0.0.5:99999", "with a port"),
        ("udp://:5600", "with a port"),
    ],
)
def test_bad_udp_output_urls_are_config_errors_naming_the_field(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config({"udp_outputs": {"cam": url}})
    [line] = str(caught.value).splitlines()
    assert line.startswith("cfg: video.udp_outputs: udp_outputs.cam ") and problem in line, line


def test_udp_outputs_must_name_existing_sources() -> None:
    with pytest.raises(ConfigError, match=r"^cfg: \(top level\): video.udp_outputs names unknown streams: a, b$"):
        _config({"udp_outputs": {"b": "udp://h:1", "cam": "udp://h:2", "a": "udp://h:3"}})


def test_uplink_url_and_token_problems_are_one_line_each_and_the_token_is_not_echoed() -> None:
    """The operator sees every problem at once; a (short) secret never lands in logs."""
    with pytest.raises(ConfigError) as caught:
        _config({"uplink": {"url": "ftp://station", "token": "hunter2"}})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[0] == "cfg: video.uplink.url: uplink url must be http(s)://host[:port] (got 'ftp://station')"
    assert lines[1].startswith("cfg: video.uplink.token: ") and "16 characters" in lines[1]
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"video.uplink.url: .*got 'http://'"):
        _config({"uplink": {"url": "http://", "token": "x" * 16}})


@pytest.mark.parametrize(
    ("url", "websocket"),
    [
        ("https://gs.example:8443/", "wss://gs.example:8443/api/video/uplink"),
        ("http://10.0.0.1:8080", "ws://10.0.0.1:8080/api/video/uplink"),
    ],
)
def test_uplink_websocket_url_follows_the_scheme(url: str, websocket: str) -> None:
    uplink = UplinkConfig(url=url, token="t" * 16)
    assert uplink.url == url.rstrip("/")
    assert uplink.websocket_url == websocket


def test_udp_output_ipv6_address_keeps_its_brackets() -> None:
    url = VideoConfig(udp_outputs={"cam": "udp://[::1]:5600"}).udp_outputs["cam"]
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("::1", 5600)
