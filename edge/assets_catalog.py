"""The public sources of the models and sample media the demo and tests use: pinned URLs and SHA-256,
so a first run on a fresh machine fetches exactly the bytes the team tested with (never committed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublicAsset:
    """One file, where it comes from and what it is for."""

    name: str  # the bare name the code looks up (e.g. "yolov8n.pt")
    kind: str  # "models" or "media": the folder it lives in
    url: str
    sha256: str
    size: int | None  # bytes, for the progress bar before the server says
    source: str  # who publishes it, and its licence
    used_for: str  # what leaving it out costs
    system_paths: tuple[str, ...] = ()  # where a distribution package installs it (plain or .gz)


CATALOG: tuple[PublicAsset, ...] = (
    PublicAsset(
        name="yolov8n.pt",
        kind="models",
        url="https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt",
        sha256="f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
        size=None,  # the server says
        source="Ultralytics YOLOv8n COCO weights · AGPL-3.0",
        used_for="every detection (the demo cannot run without a model)",
    ),
    PublicAsset(
        name="vtest.avi",
        kind="media",
        url="https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/vtest.avi",
        sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
        size=8131690,
        source="OpenCV samples (Debian opencv-doc) · BSD",
        used_for="the demo's site camera (RTSP)",
        system_paths=("/usr/share/doc/opencv-doc/examples/data/vtest.avi",),
    ),
    PublicAsset(
        name="intel_car-detection.mp4",
        kind="media",
        url="https://github.com/intel-iot-devkit/sample-videos/raw/master/car-detection.mp4",
        sha256="d31e0ebf194cc16e50eea784e7c3b0b1bb7976a4fb9b3fec26cb92a6704cca34",
        size=2811553,
        source="intel-iot-devkit/sample-videos · CC-BY-4.0",
        used_for="the demo's parking-lot camera",
    ),
    PublicAsset(
        name="kwiver_aphill_short.ts",
        kind="media",
        url="https://github.com/Kitware/kwiver/raw/master/test_data/videos/aphill_short.ts",
        sha256="9f7e95c22e1dbb91359285e9a11705998a4e806b0ab15bb6ab05bc8bc9421c99",
        size=1007492,
        source="Kitware/kwiver test data · BSD-3-Clause",
        used_for="the demo's drone: a real aerial recording with KLV metadata",
    ),
)


def catalog_entry(name: str) -> PublicAsset | None:
    """The catalog entry for a bare asset name, if it has a public source."""
    return next((asset for asset in CATALOG if asset.name == name), None)
