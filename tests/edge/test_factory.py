"""Building the node: every stream gets a rules stage (between geolocation and events) reachable for pushed rules,
and rules the model or the stream cannot run are refused before anything starts, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, parse_config
from edge.factory import build_node
from edge.rules.stage import RulesStage

YARD = {"name": "yard", "points": [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]}
FENCE = {"name": "fence", "space": "geo", "points": [[47.0, 8.0], [47.0, 8.01], [47.01, 8.01]]}
CALIBRATION = [
    {"pixel": [0, 700], "lat": 47.0, "lon": 8.0}, {"pixel": [1000, 700], "lat": 47.0, "lon": 8.001},
    {"pixel": [800, 300], "lat": 47.001, "lon": 8.001}, {"pixel": [200, 300], "lat": 47.001, "lon": 8.0},
]  # fmt: skip


def _config(model: Path, tmp_path: Path, *sources: dict):
    return parse_config({
        "sources": list(sources), "detector": {"model": str(model)}, "video": {"enabled": False},
        "metrics": {"enabled": False}, "mqtt": {"spool_dir": str(tmp_path)},
    })  # fmt: skip


def test_every_stream_gets_a_rules_stage_between_geolocation_and_events(model_path, tmp_path) -> None:
    rules = {"zones": [YARD, FENCE], "rules": [{"name": "fenced", "kind": "inside", "zone": "fence"}]}
    node = build_node(_config(
        model_path, tmp_path,
        {"name": "site", "url": "a.mp4", "geo": {"calibration": CALIBRATION}, "rules": rules},
        {"name": "plain", "url": "b.mp4"},
    ))  # fmt: skip
    assert set(node.rules) == {"site", "plain"} and all(isinstance(s, RulesStage) for s in node.rules.values())
    assert node.rules["site"].version == 0 and node.rules["site"].configured is not None
    assert node.rules["plain"].version is None
    assert [s.name for s in node.pipeline.stages["site"]] == [
        "convert", "inference", "tracking", "geolocation", "rules", "events"]  # fmt: skip
    assert node.pipeline.stages["plain"][3] is node.rules["plain"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"zones": [{**YARD, "filter": {"labels": ["person", "persn"]}}]},
         "sources[1].rules.zones[0].filter.labels: unknown label 'persn'"),
        ({"zones": [YARD, FENCE]},
         "sources[1].rules.zones[1].space: geo needs a geolocated stream (this stream has no `geo`)"),
        ({"lines": [{"name": "l", "points": [[0, 0], [1, 1]], "filter": {"min_size_m": 1}}]},
         "sources[1].rules.lines[0].filter.min_size_m needs a geolocated stream (this stream has no `geo`)"),
    ],
)  # fmt: skip
def test_rules_the_stream_cannot_run_are_refused_naming_the_field(model_path, tmp_path, source, message) -> None:
    config = _config(
        model_path, tmp_path, {"name": "ok", "url": "a.mp4"}, {"name": "cam", "url": "b.mp4", "rules": source}
    )
    with pytest.raises(ConfigError) as refused:
        build_node(config)
    assert str(refused.value) == message


def test_sinks_run_events_then_alerts_then_video_and_clips_follow_the_live_video(model_path, tmp_path) -> None:
    """The alert sink sees the clean picture (the video sink draws on it last) and keeps a clip recorder on each
    stream's live-video fan-out; without video there is nothing to cut clips from."""
    config = parse_config({
        "sources": [{"name": "a", "url": "a.mp4"}, {"name": "b", "url": "b.mp4"}],
        "detector": {"model": str(model_path)}, "video": {"whep": {"enabled": False}},
        "metrics": {"enabled": False}, "mqtt": {"spool_dir": str(tmp_path)},
    })  # fmt: skip
    node = build_node(config)
    assert [sink.name for sink in node.pipeline.sinks] == ["publish", "alerts", "video"]
    assert node.alerts is node.pipeline.sinks[1] and node.video is not None
    assert {name: r.fanout for name, r in node.alerts.recorders.items()} == node.video.fanouts

    without = build_node(_config(model_path, tmp_path / "novideo", {"name": "a", "url": "a.mp4"}))
    assert [sink.name for sink in without.pipeline.sinks] == ["publish", "alerts"]
    assert without.alerts is not None and without.alerts.recorders == {}
