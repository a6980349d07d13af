"""A `.pt` exported once per machine to a faster runtime, and cached.

Exporting yolov8n.pt to OpenVINO takes ~30 s on a small CPU and makes every later frame ~2.8x faster, so the node
does it on first use and keeps the result under the user cache (SMARTEYE_CACHE, else ~/.cache/smarteye), in
`exports/<stem>-<sha256[:16]>-<backend>-<imgsz>[-half]/`. The key is the weights' content, not their name, so a
retrained model with the same file name is exported again. An entry appears whole or not at all: the export runs
in a temporary folder beside it that is renamed into place once a marker file is written; a lock file serialises
processes that start together (test workers, several nodes on one host).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edge.assets import cache_dir

log = logging.getLogger("edge.detect")

# ultralytics export format per runtime, and how long the first export takes on a small CPU (for the log line).
EXPORT_FORMATS = {"openvino": "openvino", "onnx": "onnx", "tensorrt": "engine"}
RUNTIME_NAMES = {"openvino": "OpenVINO", "onnx": "ONNX", "tensorrt": "TensorRT"}
TYPICAL_EXPORT_S = {"openvino": 30, "onnx": 20, "tensorrt": 300}
MARKER = "export.json"


class ExportError(Exception):
    """The model could not be exported; the message names the model, the runtime and the cause."""


def exports_dir() -> Path:
    return cache_dir() / "exports"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_dir(weights: Path, backend: str, imgsz: int, half: bool, dynamic: bool = False) -> Path:
    """The cache folder for this model's bytes exported to `backend` at `imgsz` (half precision, dynamic shapes)."""
    flags = ("-half" if half else "") + ("-dynamic" if dynamic else "")
    key = f"{weights.stem}-{file_sha256(weights)[:16]}-{backend}-{imgsz}{flags}"
    return exports_dir() / key


def cached_export(entry: Path) -> Path | None:
    """The exported model in a complete cache entry, or None when the entry is absent or incomplete."""
    try:
        marker = json.loads((entry / MARKER).read_text())
    except (OSError, ValueError):
        return None
    artifact = entry / str(marker.get("artifact", ""))
    return artifact if marker.get("artifact") and artifact.exists() else None


def discard(entry: Path, reason: str) -> None:
    """Drop a broken cache entry so the next load exports again."""
    log.warning("detector: cached export %s is unusable (%s): exporting again", entry, reason)
    shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def _locked(entry: Path) -> Iterator[None]:
    entry.parent.mkdir(parents=True, exist_ok=True)
    with (entry.parent / f"{entry.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def export_model(
    weights: Path, backend: str, imgsz: int, half: bool = False, device: str = "cpu", dynamic: bool = False
) -> Path:
    """The exported model for these weights: from the cache, else exported now (and cached). Raises ExportError.

    A static export (the default) runs every frame letterboxed to imgsz x imgsz, the fastest on a CPU; `dynamic`
    accepts other input sizes (tiles of another size than imgsz)."""
    if backend not in EXPORT_FORMATS:
        raise ExportError(f"cannot export to {backend!r}: one of {', '.join(EXPORT_FORMATS)} expected")
    if weights.suffix != ".pt":
        raise ExportError(f"only a .pt model can be exported, not {weights.name}")
    entry = entry_dir(weights, backend, imgsz, half, dynamic)
    found = cached_export(entry)
    if found is not None:
        return found
    with _locked(entry):
        found = cached_export(entry)  # another process exported it while this one waited for the lock
        if found is not None:
            return found
        if entry.exists():
            discard(entry, f"no {MARKER} or its model is missing")
        return _export(weights, entry, backend, imgsz, half, device, dynamic)


def _export(weights: Path, entry: Path, backend: str, imgsz: int, half: bool, device: str, dynamic: bool) -> Path:
    from ultralytics import YOLO

    log.warning(
        "detector: exporting %s to %s (first run, ~%d s)…",
        weights.name,
        RUNTIME_NAMES[backend],
        TYPICAL_EXPORT_S[backend],
    )
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        copy = work / weights.name  # ultralytics writes the export beside the weights
        shutil.copy2(weights, copy)
        try:
            produced = YOLO(str(copy)).export(
                format=EXPORT_FORMATS[backend], imgsz=imgsz, half=half, dynamic=dynamic, device=device, verbose=False
            )
        except Exception as error:
            raise ExportError(f"exporting {weights.name} to {RUNTIME_NAMES[backend]} failed: {error}") from error
        if not produced or not Path(produced).exists():
            raise ExportError(f"exporting {weights.name} to {RUNTIME_NAMES[backend]} produced nothing")
        artifact = Path(produced).name
        copy.unlink()
        (work / MARKER).write_text(
            json.dumps(
                {
                    "artifact": artifact,
                    "source": str(weights),
                    "key": entry.name,
                    "backend": backend,
                    "imgsz": imgsz,
                    "half": half,
                    "dynamic": dynamic,
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
        )
        work.rename(entry)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.warning("detector: exported %s to %s in %.0f s", weights.name, entry, time.monotonic() - started)
    return entry / artifact
