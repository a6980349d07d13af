"""Find models and sample media without ever committing them: models/, then $SMARTEYE_ASSETS
(default ../shared next to the checkout), else let ultralytics download public weights."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def assets_root() -> Path | None:
    """The shared assets folder: $SMARTEYE_ASSETS, else ../shared beside the project if present."""
    env = os.environ.get("SMARTEYE_ASSETS")
    if env:
        return Path(env).expanduser()
    for candidate in (PROJECT_ROOT.parent / "shared", Path.cwd().parent / "shared"):
        if candidate.is_dir():
            return candidate
    return None


def _search_dirs(kind: str) -> list[Path]:
    dirs = [Path.cwd() / kind, PROJECT_ROOT / kind]
    root = assets_root()
    if root is not None:
        dirs.append(root / kind)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


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
    return None


def searched_places(kind: str) -> str:
    return ", ".join(str(d) for d in _search_dirs(kind))


def sample_media(name: str) -> Path:
    """A sample video by name, or FileNotFoundError naming where it was looked for."""
    found = find_asset(name, "media")
    if found is None:
        raise FileNotFoundError(
            f"sample media {name!r} not found (looked in {searched_places('media')}); "
            "set SMARTEYE_ASSETS to the folder holding media/ and models/"
        )
    return found
