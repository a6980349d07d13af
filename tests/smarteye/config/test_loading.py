"""Config layering: command line over environment over the YAML file over defaults; nested sections
merge key by key, lists are replaced whole; every error names its layer, field and problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config.node import EdgeConfig
from ground_station.config import GroundStationConfig
from smarteye.cli import EDGE_ENV_PREFIX, STATION_ENV_PREFIX, quick_config
from smarteye.config.loading import ConfigError, load_layered

ROOT = Path(__file__).resolve().parents[3]

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


def test_a_non_utf8_config_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("node: site-a\nsources:\n  - {name: caméra, url: x.mp4}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as error:  # was a UnicodeDecodeError traceback
        load_layered(EdgeConfig, path, {}, EDGE_ENV_PREFIX)
    message = str(error.value)
    assert message.startswith(f"{path}: not UTF-8 text: byte 0xe9") and "line 3" in message


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smarteye", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_cli_quick_flags_keep_the_files_sources(config_file: Path, tmp_path: Path) -> None:
    """`smarteye edge --config F --mqtt URL` (the quick start) must keep F's sources: the run gets past the
    config and stops only at the missing model it was given."""
    missing = tmp_path / "missing-model.pt"
    result = run_cli("edge", "--config", str(config_file), "--mqtt", "mqtt://127.0.0.1:1", "--model", str(missing))
    assert result.returncode == 2
    assert "sources" not in result.stderr and f"model file not found: {missing}" in result.stderr, result.stderr
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(b"node: caf\xe9\n")
    result = run_cli("edge", "--config", str(latin), "--mqtt", "mqtt://127.0.0.1:1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {latin}: not UTF-8 text" in result.stderr
    result = run_cli("edge", "--source", f"cam=rtsp://u:{'hunter2'}@cam:55a4/x")
    assert result.returncode == 2 and "hunter2" not in result.stderr
    assert "sources[0].url: 'rtsp://***@cam:55a4/x': port '55a4' is not a number" in result.stderr, result.stderr
