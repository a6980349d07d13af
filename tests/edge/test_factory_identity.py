"""An edge node whose broker login is not its node name is told at start: with SmartEye's broker ACL
(configs/mosquitto) everything it publishes would be dropped by the broker, and MQTT 3.1.1 has no
negative PUBACK to say so later."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.config import parse_config
from edge.factory import build_node


@pytest.mark.parametrize(("username", "warned"), [("site-b", True), ("site-a", False)])
def test_a_login_that_is_not_the_node_name_is_reported(
    username: str, warned: bool, model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config({
        "node": "site-a", "sources": [{"name": "cam", "url": "a.mp4"}], "detector": {"model": str(model_path)},
        "video": {"enabled": False}, "metrics": {"enabled": False},
        "mqtt": {"username": username, "password": "secret", "spool_dir": str(tmp_path)},
    })  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="edge.factory"):
        node = build_node(config)
    node.publisher.stop()
    said = [r.getMessage() for r in caplog.records if "not the node name" in r.getMessage()]
    assert bool(said) is warned
    if warned:
        assert "'site-b'" in said[0] and "'site-a'" in said[0] and "secret" not in said[0]
