"""URLs in configs: a bad port is a validation error naming the field, and no password or token ever reaches a
log line, an error or a published status."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.config.node import EdgeConfig
from edge.config.source import SourceConfig
from edge.config.video import UplinkConfig
from smarteye.config.loading import ConfigError, parse_model
from smarteye.config.urls import check_network_url, redact_text, redact_url

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("rtsp://admin:hunter2@cam:554/x", "rtsp://***@cam:554/x"),
        ("rtsp://admin:p@hunter2@cam/x", "rtsp://***@cam/x"),  # an '@' inside the password
        ("rtsp://u:hunter2@cam:55a4/x", "rtsp://***@cam:55a4/x"),  # unparseable port: still redacted
        ("rtsp://u:hunter2@[fe80::1/x", "rtsp://***@[fe80::1/x"),  # unbalanced bracket: urllib would raise
        ("rtsp://cam/x?user=bob&password=hunter2&fps=5", "rtsp://cam/x?user=bob&password=***&fps=5"),
        ("http://st:8080/api?token=hunter2", "http://st:8080/api?token=***"),
        ("https://st/x?Access_Token=hunter2;API-KEY=hunter2#frag", "https://st/x?Access_Token=***;API-KEY=***#frag"),
        ("srt://h:9000?passphrase=hunter2&streamid=x", "srt://h:9000?passphrase=***&streamid=x"),
        ("/media/clip.mp4", "/media/clip.mp4"),
        ("0", "0"),
        ("udp://@:5600", "udp://@:5600"),  # an empty user info hides nothing
    ],
)
def test_redact_url_hides_user_info_and_secret_parameters(url: str, safe: str) -> None:
    assert redact_url(url) == safe
    assert SECRET not in redact_url(url)


def test_redact_text_cleans_an_error_message_that_echoes_the_url() -> None:
    url = "rtsp://admin:hunter2@cam:554/x?token=hunter2"
    text = f"Connection refused: '{url}' and also ftp://other:hunter2@h/"
    cleaned = redact_text(text, url)
    assert SECRET not in cleaned and "rtsp://***@cam:554/x?token=***" in cleaned and "ftp://***@h/" in cleaned


@pytest.mark.parametrize("port", ["55a4", "0", "70000", "-1", " 554"])
def test_a_port_that_is_not_a_number_is_a_field_error_without_the_password(port: str) -> None:
    url = f"rtsp://u:hunter2@cam:{port}/x"
    with pytest.raises(ValidationError) as exc:
        SourceConfig(name="cam", url=url)
    (error,) = exc.value.errors(include_url=False)
    assert error["loc"] == ("url",) and "port" in error["msg"]
    assert SECRET not in str(exc.value)  # nor in pydantic's own rendering (input hidden)
    with pytest.raises(ConfigError) as config_error:
        parse_model(EdgeConfig, {"node": "n", "sources": [{"name": "cam", "url": url}]}, "edge.yaml")
    message = str(config_error.value)
    assert message.startswith("edge.yaml: sources[0].url: ") and "is not a number" in message
    assert SECRET not in message


def test_good_network_urls_pass() -> None:
    for url in ("rtsp://u:p@cam:554/x", "rtsp://cam/x", "rtsp://[::1]:8554/x", "udp://@:5600", "srt://0.0.0.0:9000"):
        assert SourceConfig(name="cam", url=url).url == url
    assert check_network_url("http://[::1]:8080") == "http://[::1]:8080"
    with pytest.raises(ValueError, match="has no host"):
        check_network_url("rtsp:///x")


def test_uplink_url_errors_do_not_echo_credentials() -> None:
    with pytest.raises(ValidationError) as exc:
        UplinkConfig(url="ftp://u:hunter2@station", token="x" * 16)
    assert SECRET not in str(exc.value) and "***@station" in str(exc.value)
    with pytest.raises(ValidationError, match="port 'abc' is not a number"):
        UplinkConfig(url="http://station:abc", token="x" * 16)


def test_status_url_is_redacted_even_for_a_url_that_bypassed_validation() -> None:
    config = SourceConfig.model_construct(name="cam", url="rtsp://u:hunter2@cam:55a4/x?password=hunter2")
    assert config.safe_url == "rtsp://***@cam:55a4/x?password=***"
