"""Fuzz target: the config loader (YAML file → EdgeConfig). Whatever the file holds (random bytes, damaged
YAML, non-UTF-8, wrong types, extreme numbers, odd URLs), loading raises ConfigError naming the file and
nothing else; a config that loads is valid and its URLs are shown redacted."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config.node import EdgeConfig
from smarteye.config.loading import ConfigError, load_model
from tests.fuzz.mutate import FUZZ_EXAMPLES, fuzz_bytes, fuzz_settings, seeds

CORPUS = seeds("config")
WORK = Path(tempfile.mkdtemp(prefix="smarteye-fuzz-config-"))
PATH = WORK / "edge.yaml"
USERINFO = re.compile(r"//(?!\*\*\*@)[^/?#]+@")  # user info left in a URL after redaction


def _load(data: bytes) -> EdgeConfig | None:
    PATH.write_bytes(data)
    try:
        return load_model(EdgeConfig, PATH)
    except ConfigError as error:
        assert str(error).startswith(str(PATH)), str(error)
        return None


def test_seeds_load() -> None:
    for seed in CORPUS:
        assert _load(seed) is not None, seed[:80]


@fuzz_settings
@given(fuzz_bytes(CORPUS, max_size=2048, max_mutations=6))
def test_any_file_is_a_config_or_a_config_error(data: bytes) -> None:
    config = _load(data)
    if config is not None:
        for source in config.sources:
            assert USERINFO.search(source.safe_url) is None, source.safe_url  # rtsp://u:p@… shows as //***@


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["rtsp://u:p@cam:55a4/x", "udp://@:99999", "rtsp://[::1", "0", "", "mqtt://h:0", "../etc"]),
)  # fmt: skip
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10),
                                                                                              inner, max_size=4),
                       max_leaves=12)  # fmt: skip
_SOURCE_KEYS = ["name", "url", "kind", "loop", "realtime", "open_timeout_s", "reconnect", "geo", "rules", "priority",
                "detector", "enabled", "max_detection_fps"]  # fmt: skip
_TOP_KEYS = ["node", "sources", "mqtt", "detector", "tracking", "events", "video", "status_interval_s"]


@settings(fuzz_settings, max_examples=max(10, FUZZ_EXAMPLES // 3))  # slow to generate: fewer, still varied
@given(
    st.fixed_dictionaries(
        {"node": st.one_of(st.just("n1"), _SCALARS)},
        optional={key: _VALUES for key in _TOP_KEYS[2:]},
    ),
    st.lists(st.dictionaries(st.sampled_from(_SOURCE_KEYS), _VALUES, max_size=6), max_size=3),
)
def test_structured_nonsense_is_a_config_error(top: dict, sources: list) -> None:
    document = {**top, "sources": sources}
    text = yaml.safe_dump(document, allow_unicode=True).encode()
    _load(text)
