"""What the demo can run on this machine: the model and the site camera's video are required; the
parking-lot camera and the real drone recording are optional. Each is found locally or fetched on first
use; what cannot be had is left out and said once, with the command that adds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.assets import AssetMissing, obtain_asset
from edge.assets_fetch import offline

MODEL = "yolov8n.pt"
SITE_VIDEO = "vtest.avi"
PARKING_VIDEO = "intel_car-detection.mp4"
DRONE_RECORDING = "kwiver_aphill_short.ts"


class DemoCannotRun(FileNotFoundError):
    """A required asset is missing; the message says which and the command that gets it."""


@dataclass(slots=True)
class DemoAssets:
    model: Path
    site_video: Path
    parking_video: Path | None
    drone_recording: Path | None
    left_out: list[str] = field(default_factory=list)  # one plain sentence per part left out


def gather_demo_assets(*, progress: bool = True) -> DemoAssets:
    """Every asset the demo uses, fetched if need be; DemoCannotRun when the model or site video is missing."""
    try:
        model = obtain_asset(MODEL, "models", progress=progress)
    except AssetMissing as error:
        raise DemoCannotRun(f"no detection model, so nothing to run: {error}") from None
    try:
        site_video = obtain_asset(SITE_VIDEO, "media", progress=progress)
    except AssetMissing as error:
        raise DemoCannotRun(f"no video for the site camera: {error}") from None
    left_out: list[str] = []
    parking = _optional(PARKING_VIDEO, progress, left_out, "the parking-lot camera `parking` is left out")
    drone = _optional(
        DRONE_RECORDING, progress, left_out,
        "the real drone recording is left out: the drone is simulated instead, flying over the site camera's "
        "scene with synthetic MAVLink, so the map and ground positions still show",
    )  # fmt: skip
    return DemoAssets(model, site_video, parking, drone, left_out)


def _optional(name: str, progress: bool, left_out: list[str], consequence: str) -> Path | None:
    try:
        return obtain_asset(name, "media", progress=progress)
    except AssetMissing:
        why = "downloads are off (SMARTEYE_OFFLINE)" if offline() else "the download failed (offline?)"
        left_out.append(f"{consequence} ({name} is not on this machine and {why}; add it with "
                        f"`smarteye assets fetch {name}`)")  # fmt: skip
        return None
