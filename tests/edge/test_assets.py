"""Asset lookup on a machine without ../shared: opencv-doc's vtest.avi (plain or gzipped), the user
cache, and a one-line error naming the command that gets what is missing."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from edge import assets
from edge.assets import AssetMissing, find_asset, obtain_asset, sample_media
from edge.assets_catalog import CATALOG, PublicAsset, catalog_entry

OPENCV_DOC_VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ../shared, an empty cache, a working directory without media/ or models/, no network."""
    monkeypatch.setenv("SMARTEYE_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("SMARTEYE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTEYE_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(assets, "PROJECT_ROOT", tmp_path / "project")
    return tmp_path


def test_every_catalog_entry_is_pinned() -> None:
    for entry in CATALOG:
        assert entry.url.startswith("https://") and len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        assert entry.kind in ("models", "media")


def test_vtest_is_found_in_opencv_doc(bare_machine: Path) -> None:
    if not OPENCV_DOC_VTEST.exists():
        pytest.skip("opencv-doc is not installed (scripts/setup.sh installs it)")
    assert sample_media("vtest.avi") == OPENCV_DOC_VTEST
    entry = catalog_entry("vtest.avi")
    assert entry is not None
    assert hashlib.sha256(OPENCV_DOC_VTEST.read_bytes()).hexdigest() == entry.sha256


def test_a_gzipped_package_copy_is_unpacked_into_the_cache(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"not really a video" * 100
    packed = bare_machine / "doc" / "sample.avi.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(data))
    entry = PublicAsset("sample.avi", "media", "https://example.org/sample.avi", hashlib.sha256(data).hexdigest(),
                        len(data), "test", "test", system_paths=(str(packed.with_suffix("")),))  # fmt: skip
    monkeypatch.setattr(assets, "catalog_entry", lambda name: entry if name == "sample.avi" else None)
    found = find_asset("sample.avi", "media")
    assert found == bare_machine / "cache" / "media" / "sample.avi"
    assert found.read_bytes() == data


def test_a_cached_download_is_found(bare_machine: Path) -> None:
    cached = bare_machine / "cache" / "media" / "kwiver_aphill_short.ts"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert obtain_asset("kwiver_aphill_short.ts", "media") == cached


def test_missing_and_offline_names_the_command(bare_machine: Path) -> None:
    with pytest.raises(AssetMissing) as caught:
        obtain_asset("kwiver_aphill_short.ts", "media")
    message = str(caught.value)
    assert "\n" not in message
    assert "SMARTEYE_OFFLINE" in message and "smarteye assets fetch kwiver_aphill_short.ts" in message
    with pytest.raises(AssetMissing, match=r"smarteye assets fetch yolov8n\.pt"):
        obtain_asset("yolov8n.pt", "models")
    with pytest.raises(AssetMissing, match=r"'nothing\.mp4' not found"):
        obtain_asset("nothing.mp4", "media")
