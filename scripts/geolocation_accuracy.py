#!/usr/bin/env python3
"""Geolocation accuracy against the sensor system's own ground truth in real drone KLV.

For each KLV packet of the aphill flights, the image centre and four corners are projected from the
packet's platform position and attitude, sensor pointing and field of view (edge.geo.projection,
the same code that geolocates detections), and compared with the frame centre and corner
coordinates the sensor system computed and put in the same packet. Prints the median and 90th
percentile errors in metres. Usage: python scripts/geolocation_accuracy.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pymap3d

from edge.assets import sample_media
from edge.geo.projection import CameraPose, GimbalFrame, project_pixels
from edge.telemetry.klv import KlvParser
from smarteye.wire.telemetry import SensorMetadata

FILES = ("kwiver_aphill_short.ts", "kwiver_aphill_klv_10s.ts")
# Image centre, then the corners in MISB order: upper-left, upper-right, lower-right, lower-left.
PIXELS = np.array([[0.5, 0.5], [0, 0], [1, 0], [1, 1], [0, 1]])


@dataclass(slots=True)
class Accuracy:
    file: str
    packets: int
    centre_errors_m: list[float]
    corner_errors_m: list[float]
    median_range_m: float

    def summary(self) -> dict[str, float | int | str]:
        return {
            "file": self.file,
            "packets": self.packets,
            "median_range_m": round(self.median_range_m, 1),
            "centre_median_m": round(statistics.median(self.centre_errors_m), 2),
            "centre_p90_m": round(float(np.percentile(self.centre_errors_m, 90)), 2),
            "corner_median_m": round(statistics.median(self.corner_errors_m), 2),
            "corner_p90_m": round(float(np.percentile(self.corner_errors_m, 90)), 2),
        }


def read_klv(path: Path) -> list[SensorMetadata]:
    parser = KlvParser()
    found: list[SensorMetadata] = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.data[0]):
            if packet.size:
                found += parser.parse(bytes(packet))
    return found


def pose_of(meta: SensorMetadata) -> CameraPose:
    """The camera pose exactly as the telemetry states it: platform attitude, then the sensor's angles."""
    return CameraPose(
        lat=meta.sensor_lat, lon=meta.sensor_lon, alt_m=meta.sensor_alt_m,
        platform_yaw_deg=meta.platform_heading_deg, platform_pitch_deg=meta.platform_pitch_deg,
        platform_roll_deg=meta.platform_roll_deg, gimbal_yaw_deg=meta.sensor_rel_az_deg,
        gimbal_pitch_deg=meta.sensor_rel_el_deg, gimbal_roll_deg=meta.sensor_rel_roll_deg or 0.0,
        gimbal_frame=GimbalFrame.BODY, hfov_deg=meta.hfov_deg, vfov_deg=meta.vfov_deg,
    )  # fmt: skip


def _error_m(point, lat: float, lon: float) -> float:
    north, east, _ = pymap3d.geodetic2ned(point.lat, point.lon, 0.0, lat, lon, 0.0)
    return float(np.hypot(north, east))


def measure(path: Path, ground_elev_m: float = 0.0) -> Accuracy:
    centre, corners, ranges = [], [], []
    metas = [m for m in read_klv(path) if m.corners and m.frame_center_lat is not None]
    for meta in metas:
        points = project_pixels(pose_of(meta), PIXELS * 1000, 1000, 1000, ground_elev_m)
        if any(p is None for p in points):
            raise AssertionError(f"{path.name}: a ray missed the ground at pts {meta.pts}")
        centre.append(_error_m(points[0], meta.frame_center_lat, meta.frame_center_lon))
        corners += [_error_m(p, lat, lon) for p, (lat, lon) in zip(points[1:], meta.corners, strict=True)]
        ranges.append(points[0].range_m)
    return Accuracy(path.name, len(metas), centre, corners, statistics.median(ranges))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(sample_media(name)).summary() for name in FILES]
    for r in results:
        print(
            f"{r['file']}: {r['packets']} packets, slant range ~{r['median_range_m']:.0f} m: "
            f"centre error median {r['centre_median_m']} m (p90 {r['centre_p90_m']}), "
            f"corners median {r['corner_median_m']} m (p90 {r['corner_p90_m']})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
