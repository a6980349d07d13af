"""Config layering: command line over environment over the YAML file over defaults; nested sections
merge key by key, lists are replaced whole; every error names its layer, field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config.node import EdgeConfig
from ground_station.config import GroundStationConfig
from smarteye.cli import EDGE_ENV_PREFIX, STATION_ENV_PREFIX, quick_config
from smarteye.config.loading import ConfigError, load_layered

FILE = """
node: site-a
sources:
  - {name: gate, url: rtsp://cam.example/gate}
  - {name: yard, url: rtsp://cam.example/yard}
mqtt: {url: "mqtt://file-broker:1883", spool_dir: /var/spool/smarteye}
detector: {model: yolov8n.pt, imgsz: 320}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(FILE)
    return path


def test_file_alone(config_file: Path) -> None:
    cfg = load_layered(EdgeConfig, config_file, {}, EDGE_ENV_PREFIX)
    assert cfg.node == "site-a" and [s.name for s in cfg.sources] == ["gate", "yard"]
    assert cfg.mqtt.url == "mqtt://file-broker:1883" and cfg.detector.imgsz == 320


def test_command_line_wins_over_environment_wins_over_file(config_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("SMARTEYE_EDGE_MQTT__URL", "mqtt://env-broker:1883")
    monkeypatch.setenv("SMARTEYE_EDGE_NODE", "from-env")
    monkeypatch.setenv("SMARTEYE_EDGE_DETECTOR__CONF", "0.4")
    cli = quick_config(["cam=rtsp://other/cam"], "yolo11n.pt", None, None)
    cfg = load_layered(EdgeConfig, config_file, cli, EDGE_ENV_PREFIX)
    assert cfg.node == "from-env"  # environment over the file
    assert cfg.mqtt.url == "mqtt://env-broker:1883"
    assert str(cfg.mqtt.spool_dir) == "/var/spool/smarteye"  # the rest of the section stays from the file
    assert cfg.detector.model == "yolo11n.pt" and cfg.detector.imgsz == 320 and cfg.detector.conf == 0.4
    assert [(s.name, s.url) for s in cfg.sources] == [("cam", "rtsp://other/cam")]  # a list is replaced whole
    cfg = load_layered(EdgeConfig, config_file, {"mqtt": {"url": "mqtt://cli-broker:1883"}}, EDGE_ENV_PREFIX)
    assert cfg.mqtt.url == "mqtt://cli-broker:1883"  # command line over the environment


def test_errors_name_the_layers_and_the_field(config_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("SMARTEYE_EDGE_DETECTOR__IMGSZ", "huge")
    with pytest.raises(ConfigError) as error:
        load_layered(EdgeConfig, config_file, {}, EDGE_ENV_PREFIX)
    assert f"{config_file} + environment: detector.imgsz:" in str(error.value)
    monkeypatch.delenv("SMARTEYE_EDGE_DETECTOR__IMGSZ")
    with pytest.raises(ConfigError, match=r"command line: mqtt.url: MQTT URL must start with mqtt://"):
        load_layered(EdgeConfig, config_file, {"mqtt": {"url": "http://x"}}, EDGE_ENV_PREFIX)
    config_file.write_text("sources: [")
    with pytest.raises(ConfigError, match=r"edge.yaml: line 1, column \d+: invalid YAML"):
        load_layered(EdgeConfig, config_file, {}, EDGE_ENV_PREFIX)


def test_station_defaults_with_overrides(monkeypatch) -> None:
    monkeypatch.setenv("SMARTEYE_STATION_WEB__HOST", "0.0.0.0")
    cfg = load_layered(GroundStationConfig, None, {"web": {"port": 8443}}, STATION_ENV_PREFIX)
    assert (cfg.web.host, cfg.web.port) == ("0.0.0.0", 8443)
    assert cfg.web.secure_cookies == GroundStationConfig().web.secure_cookies  # untouched keys keep defaults
