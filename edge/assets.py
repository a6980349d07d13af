"""Find models and sample media without ever committing them: models/ and media/ of the working
directory and the project, $SMARTEYE_ASSETS (default ../shared next to the checkout), the user cache
(where first use downloads them), and the distribution's own copy (opencv-doc's vtest.avi)."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.assets_catalog import CATALOG, PublicAsset, catalog_entry
from edge.assets_fetch import FetchError, Progress, fetch, offline

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "SMARTEYE_CACHE"


class AssetMissing(FileNotFoundError):
    """An asset that is neither on disk nor downloadable now; the message says how to add it."""


def assets_root() -> Path | None:
    """The shared assets folder: $SMARTEYE_ASSETS, else ../shared beside the project if present."""
    env = os.environ.get("SMARTEYE_ASSETS")
    if env:
        return Path(env).expanduser()
    for candidate in (PROJECT_ROOT.parent / "shared", Path.cwd().parent / "shared"):
        if candidate.is_dir():
            return candidate
    return None


def cache_dir() -> Path:
    """Where downloads go: $SMARTEYE_CACHE, else $XDG_CACHE_HOME/smarteye (~/.cache/smarteye)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "smarteye"


def _search_dirs(kind: str) -> list[Path]:
    dirs = [Path.cwd() / kind, PROJECT_ROOT / kind]
    root = assets_root()
    if root is not None:
        dirs.append(root / kind)
    dirs.append(cache_dir() / kind)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _from_system(entry: PublicAsset) -> Path | None:
    """A distribution package's copy (e.g. opencv-doc's vtest.avi), unpacked into the cache if gzipped."""
    for text in entry.system_paths:
        plain = Path(text)
        if plain.is_file():
            return plain
        packed = plain.with_name(plain.name + ".gz")
        if packed.is_file():
            target = cache_dir() / entry.kind / entry.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".unpacking")
                with gzip.open(packed, "rb") as source, partial.open("wb") as out:
                    shutil.copyfileobj(source, out)
                partial.replace(target)
            return target
    return None


def find_asset(name: str, kind: str) -> Path | None:
    """An existing path for `name` (a path, or a bare name looked up in the `kind` folders)."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    if path.is_absolute() or len(path.parts) > 1:
        return None
    for directory in _search_dirs(kind):
        if (directory / name).exists():
            return directory / name
    entry = catalog_entry(name)
    if entry is not None and entry.kind == kind:
        return _from_system(entry)
    return None


def searched_places(kind: str) -> str:
    places = [str(d) for d in _search_dirs(kind)]
    places += [p for entry in CATALOG if entry.kind == kind for p in entry.system_paths]
    return ", ".join(places)


def how_to_add(name: str, kind: str, *, with_url: bool = True) -> str:
    """The one instruction that gets this asset onto the machine."""
    entry = catalog_entry(name)
    hint = f"put {name} in {cache_dir() / kind} (or set SMARTEYE_ASSETS to a folder holding {kind}/)"
    if entry is None:
        return hint
    if entry.system_paths:
        hint = f"`apt-get install opencv-doc`, or {hint}"
    source = f" (from {entry.url})" if with_url else ""
    return f"run `smarteye assets fetch {name}`{source} once online, or {hint}"


def sample_media(name: str) -> Path:
    """A sample video by name, or AssetMissing naming where it was looked for and how to get it."""
    found = find_asset(name, "media")
    if found is None:
        raise AssetMissing(
            f"sample media {name!r} not found (looked in {searched_places('media')}); {how_to_add(name, 'media')}"
        )
    return found


def obtain_asset(name: str, kind: str, *, progress: bool = True) -> Path:
    """The asset on disk, downloaded from its pinned public source on first use; AssetMissing (one line:
    what, why, how to add it) when it is neither here nor downloadable now."""
    found = find_asset(name, kind)
    if found is not None:
        return found
    entry = catalog_entry(name)
    if entry is None or entry.kind != kind:
        raise AssetMissing(f"{name!r} not found (looked in {searched_places(kind)}); {how_to_add(name, kind)}")
    return download(entry, progress=progress)


def download(entry: PublicAsset, *, progress: bool = True) -> Path:
    """Fetch one catalog entry into the cache (resuming a partial download), with a progress bar."""
    dest = cache_dir() / entry.kind / entry.name
    try:
        with _progress_bar(entry, enabled=progress and not offline()) as report:
            return fetch(entry.url, dest, entry.sha256, progress=report)
    except FetchError as error:
        raise AssetMissing(f"{error}; {how_to_add(entry.name, entry.kind, with_url=False)}") from None


@contextlib.contextmanager
def _progress_bar(entry: PublicAsset, enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr (bytes, speed, time left) fed by the downloader."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (*Progress.get_default_columns()[:2], DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    console = Console(file=sys.stderr)
    with Progress(*columns, console=console, transient=True) as bar:  # a failed download leaves no 0 % bar
        task = bar.add_task(f"downloading {entry.name}", total=entry.size)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total or entry.size)

        yield report
    console.print(f"downloaded {entry.name} ({entry.source}) into {cache_dir() / entry.kind}")


@dataclass(frozen=True, slots=True)
class AssetState:
    """One catalog asset on this machine: where it is, or why it is missing and how to add it."""

    entry: PublicAsset
    path: Path | None

    @property
    def present(self) -> bool:
        return self.path is not None


def asset_states() -> list[AssetState]:
    """Every catalog asset with its location (None when missing), for `smarteye assets list` and doctor."""
    return [AssetState(entry, find_asset(entry.name, entry.kind)) for entry in CATALOG]
