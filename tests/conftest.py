"""Shared fixtures: real assets from $SMARTEYE_ASSETS (default ../shared), never copies."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from edge.assets import assets_root
from smarteye.sim.broker import MosquittoBroker, find_mosquitto

# Property and fuzz tests (Hypothesis, schemathesis) draw the same examples on every run by default, so CI
# checks a fixed, reproducible set; SMARTEYE_FUZZ_RANDOM=1 explores new ones (what a fuzzing session does).
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("SMARTEYE_FUZZ_RANDOM") else "fixed")


def _asset(kind: str, name: str) -> Path:
    root = assets_root()
    path = root / kind / name if root else None
    if path is None or not path.exists():
        pytest.skip(f"asset {kind}/{name} not found: set SMARTEYE_ASSETS to the folder with media/ and models/")
    return path


@pytest.fixture(scope="session")
def media():
    return lambda name: _asset("media", name)


@pytest.fixture(scope="session")
def model_path() -> Path:
    return _asset("models", "yolov8n.pt")


@pytest.fixture(scope="session")
def gst_available() -> None:
    ok = (
        shutil.which("gst-launch-1.0")
        and subprocess.run(
            ["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
            capture_output=True,
        ).returncode
        == 0
    )
    if not ok:
        pytest.skip("GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is not installed")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    from smarteye.sim.postgres import postgres_admin_url

    url = postgres_admin_url()
    if url is None:
        pytest.skip("PostgreSQL unreachable (127.0.0.1:5432, db `test`, user postgres/root; or SMARTEYE_TEST_PG_URL)")
    return url


@pytest.fixture
def pg_url(pg_admin_url: str):
    """A throw-away PostgreSQL schema for one test."""
    from smarteye.sim.postgres import postgres_schema

    with postgres_schema(pg_admin_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ground station's store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ground.sqlite"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def secure_broker() -> Iterator[Callable[..., MosquittoBroker]]:
    """`secure_broker("site-a", persistence=True)` starts the broker as a site runs it (TLS with a fresh CA,
    a login per named node and for the station, the ACL): tests use it, not an anonymous one, so they run
    what production runs. Closed after the test."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    started: list[MosquittoBroker] = []

    def start(*nodes: str, **kwargs: object) -> MosquittoBroker:
        broker = MosquittoBroker.secured(nodes, **kwargs)  # type: ignore[arg-type]
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.close()


E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`-m "not e2e"` (the fast subset's command) does not import tests/e2e only to deselect all of it: its
    modules and their helpers take seconds to import."""
    if collection_path == E2E_DIR and config.option.markexpr.replace(" ", "") == "note2e":
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Whole-system tests (processes, browsers, real video end to end) live in tests/e2e and carry the
    `e2e` marker, so `pytest -m "not e2e"` is the fast subset; whole-component tests elsewhere mark themselves."""
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
