"""Download one public file into the cache: streamed to `<name>.part`, resumed with an HTTP Range
request after an interruption, checked against its pinned SHA-256 before it takes its real name, with
a progress bar; every failure is one line naming the file, the URL and what to do."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import httpx

CHUNK = 1 << 16
OFFLINE_ENV = "SMARTEYE_OFFLINE"

# (bytes so far, total or None) after every chunk; None: no progress shown.
Progress = Callable[[int, int | None], None]


class FetchError(Exception):
    """A download that did not give the pinned file; the message is one line a user can act on."""


def offline() -> bool:
    """SMARTEYE_OFFLINE=1: never touch the network (CI, air-gapped sites)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks by the standard library (models are hundreds of MB)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def fetch(
    url: str,
    dest: Path,
    sha256: str,
    *,
    progress: Progress | None = None,
    timeout_s: float = 20.0,
    attempts: int = 3,
) -> Path:
    """`dest`, downloaded from `url` and verified; a partial `<dest>.part` from an earlier run is resumed.

    A dropped connection is resumed from where it stopped (up to `attempts` times); a checksum mismatch
    deletes the partial file (so the next try starts clean) and raises."""
    if dest.exists() and sha256_of(dest) == sha256:
        return dest
    if offline():
        raise FetchError(f"{dest.name}: not downloaded from {url} ({OFFLINE_ENV} is set)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error = ""
    for _ in range(max(1, attempts)):
        try:
            _download(url, part, progress, timeout_s)
            break
        except httpx.HTTPStatusError as error:
            raise FetchError(f"{dest.name}: {url} answered HTTP {error.response.status_code}") from None
        except (httpx.TransportError, OSError) as error:  # refused, DNS, timeout, cut mid-body
            last_error = str(error) or type(error).__name__
            if not part.exists() or part.stat().st_size == 0:
                raise FetchError(f"{dest.name}: cannot download {url} ({last_error}); offline?") from None
    else:
        raise FetchError(f"{dest.name}: download from {url} kept breaking off ({last_error}); run it again to resume")
    actual = sha256_of(part)
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise FetchError(f"{dest.name}: checksum mismatch (SHA-256 {actual[:12]}…, expected {sha256[:12]}…) from {url}")
    part.replace(dest)
    return dest


def _download(url: str, part: Path, progress: Progress | None, timeout_s: float) -> None:
    """Append the rest of `url` to `part`, asking only for the bytes it lacks."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout_s) as response:
        if response.status_code == 416:  # the partial file is already whole
            return
        response.raise_for_status()
        if have and response.status_code != 206:  # the server ignored Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with part.open("ab" if have else "wb") as file:
            done = have
            if progress is not None:
                progress(done, total)
            for chunk in response.iter_bytes(CHUNK):
                file.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done < total:
            raise OSError(f"connection closed after {done} of {total} bytes")
