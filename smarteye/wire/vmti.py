"""Detections made by the aircraft itself: MISB ST 0903 Video Moving Target Indicator (VMTI) reports.

A drone's own processor may report the targets it sees in a frame (pixel box, ground position, confidence) in
KLV beside the video. The edge decodes them (edge.telemetry.vmti) and publishes them with the stream's telemetry,
so the station can show them next to the edge's own detections.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

PixelBox = tuple[int, int, int, int]


class VmtiTarget(BaseModel):
    """One target of a VMTI report (an ST 0903 VTarget pack); every field but `id` is optional in the standard."""

    id: int = Field(ge=0, description="Target id, unique within the report (the VTarget pack's BER-OID id).")
    centroid_px: tuple[int, int] | None = Field(
        None, description="Centroid pixel (x, y), 0-based from the top-left corner of the frame."
    )
    box_px: PixelBox | None = Field(
        None, description="Bounding box (x1, y1, x2, y2) in pixels, 0-based, corners inclusive."
    )
    priority: int | None = Field(None, description="Priority, 1 highest … 255 lowest.")
    confidence_pct: int | None = Field(None, ge=0, le=100, description="Detection confidence, percent.")
    history: int | None = Field(None, description="How many times the target was detected before.")
    lat: float | None = Field(None, description="Target latitude, WGS84 degrees.")
    lon: float | None = Field(None, description="Target longitude, WGS84 degrees.")
    hae_m: float | None = Field(None, description="Target height above the WGS84 ellipsoid, metres.")
    location_offset_deg: tuple[float, float] | None = Field(
        None, description="(lat, lon) offset from the frame centre, degrees, when given as an offset."
    )
    algorithm_id: int | None = Field(None, description="Id of the algorithm that detected the target.")


class VmtiReport(BaseModel):
    """One ST 0903 VMTI local set: the targets the aircraft reported for one frame."""

    pts: float | None = Field(None, description="Presentation time (s) of the carrying data packet in the stream.")
    time: float | None = Field(None, description="Precision timestamp, UTC epoch seconds.")
    system_name: str | None = Field(None, description="Name of the VMTI system that produced the targets.")
    version: int | None = Field(None, description="ST 0903 version the set was written to.")
    source_sensor: str | None = Field(None, description="Sensor whose imagery the targets were found in.")
    frame_number: int | None = None
    frame_width: int | None = Field(None, description="Frame width in pixels (the pixel numbers' row length).")
    frame_height: int | None = Field(None, description="Frame height in pixels.")
    hfov_deg: float | None = Field(None, description="Horizontal field of view of the VMTI sensor, degrees.")
    vfov_deg: float | None = Field(None, description="Vertical field of view of the VMTI sensor, degrees.")
    targets_detected: int | None = Field(None, description="Targets detected in the frame (before culling).")
    targets: list[VmtiTarget] = Field(default_factory=list, description="The reported targets.")
    checksum_ok: bool | None = Field(None, description="Checksum verified; None when the set carries none.")
