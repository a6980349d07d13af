"""Configuration: good files load, bad ones fail with file, field and problem on one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import ConfigError, EdgeConfig, load_config, parse_config
from edge.config.source import SourceKind, redact_url
from smarteye.wire.messages import MESSAGE_MODELS

ROOT = Path(__file__).resolve().parents[3]


def test_example_config_loads() -> None:
    config = load_config(ROOT / "configs" / "edge.example.yaml")
    assert config.node == "site-a-edge-1"
    assert [s.resolved_kind for s in config.sources] == [SourceKind.RTSP, SourceKind.MPEGTS_UDP, SourceKind.FILE]
    assert config.detector.classes is not None and "person" in config.detector.classes


def test_bad_field_is_named_with_its_index(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "sources:\n  - {name: ok, url: rtsp://h/a}\n  - {name: two, url: 'rtsp://', kind: rtsp}\ndetector: {conf: 2}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert any(line.startswith(f"{path}: sources[1].url: ") and "has no host" in line for line in lines), lines
    assert any(line.startswith(f"{path}: detector.conf: ") for line in lines), lines


def test_unknown_field_and_duplicate_names() -> None:
    with pytest.raises(ConfigError, match=r"cfg: sources\[0\]\.urll: Extra inputs are not permitted"):
        parse_config({"sources": [{"name": "a", "url": "x.mp4", "urll": "y"}]}, "cfg")
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_config({"sources": [{"name": "a", "url": "x.mp4"}, {"name": "a", "url": "y.mp4"}]}, "cfg")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("sources:\n  - name: a\n   url: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: invalid YAML"):
        load_config(path)


def test_mqtt_url_and_credentials_are_not_leaked() -> None:
    config = parse_config(
        {
            "sources": [{"name": "a", "url": "rtsp://admin:hunter2@cam/x"}],
            "mqtt": {"url": "mqtt://broker:1884", "username": "u", "password": "hunter2"},
        }
    )
    assert (config.mqtt.host, config.mqtt.port) == ("broker", 1884)
    assert "hunter2" not in repr(config)
    assert "hunter2" not in config.sources[0].safe_url
    assert redact_url("rtsp://admin:hunter2@cam:554/x") == "rtsp://***@cam:554/x"
    with pytest.raises(ConfigError, match=r"mqtt\.url"):
        parse_config({"sources": [{"name": "a", "url": "x.mp4"}], "mqtt": {"url": "http://broker"}})


def test_cli_bad_config_is_one_line_per_problem_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("node: 'bad node!'\nsources: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "smarteye", "edge", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert any("sources: List should have at least 1 item" in line for line in errors), result.stderr
    assert any("bad node!" in line for line in errors), result.stderr


def test_shipped_json_schemas_match_the_models() -> None:
    """docs/schemas is generated from the pydantic models; a stale file fails here."""
    import json

    for name, model in MESSAGE_MODELS.items():
        path = ROOT / "docs" / "schemas" / f"{name}.v1.schema.json"
        shipped = json.loads(path.read_text())
        shipped.pop("$id")
        assert shipped == model.model_json_schema(), f"{path} is stale: run `smarteye schemas`"
    shipped_config = json.loads((ROOT / "docs" / "schemas" / "edge-config.schema.json").read_text())
    assert shipped_config == EdgeConfig.model_json_schema()
