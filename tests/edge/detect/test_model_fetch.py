"""A public model missing on the machine is fetched on first use from its pinned source (here a local HTTP
server standing in for it), checked and cached; offline, the error names the command that gets it."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from edge import assets
from edge.assets_catalog import PublicAsset
from edge.detect.detector import ModelError, resolve_model_path


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTEYE_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("SMARTEYE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(assets, "PROJECT_ROOT", tmp_path / "project")
    return tmp_path


def test_offline_names_the_command(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTEYE_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"model 'yolov8n\.pt': .*`smarteye assets fetch yolov8n\.pt`"):
        resolve_model_path("yolov8n.pt")


def test_fetched_on_first_use_then_found_in_the_cache(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = bare_machine / "www"
    served.mkdir()
    weights = b"pretend weights" * 1000
    (served / "yolov8n.pt").write_bytes(weights)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entry = PublicAsset("yolov8n.pt", "models", f"http://127.0.0.1:{server.server_address[1]}/yolov8n.pt",
                        hashlib.sha256(weights).hexdigest(), len(weights), "test", "test")  # fmt: skip
    monkeypatch.setattr("edge.detect.detector.catalog_entry", lambda name: entry if name == entry.name else None)
    monkeypatch.setattr(assets, "catalog_entry", lambda name: entry if name == entry.name else None)
    try:
        path = Path(resolve_model_path("yolov8n.pt"))
    finally:
        server.shutdown()
        server.server_close()
    assert path == bare_machine / "cache" / "models" / "yolov8n.pt" and path.read_bytes() == weights
    assert resolve_model_path("yolov8n.pt") == str(path)  # the server is gone: found in the cache
