"""Sink: each drone stream's tracked target for its MAVLink camera component (what QGroundControl shows
as the camera's tracking). The target is the best-scored track of the frame, a geolocated one first, so
CAMERA_TRACKING_GEO_STATUS has a position whenever one of the objects has."""

from __future__ import annotations

from edge.frame import Frame
from edge.telemetry.camera_component import TargetBoard, TrackedTarget


class CameraTracking:
    name = "camera-tracking"

    def __init__(self, boards: dict[str, TargetBoard]) -> None:
        self.boards = boards

    def consume(self, frame: Frame) -> None:
        board = self.boards.get(frame.stream)
        if board is None or not frame.tracks:
            return
        best = max(frame.tracks, key=lambda t: (t.geo is not None, t.score))
        w, h = float(frame.width), float(frame.height)
        geo = best.geo
        board.put(TrackedTarget(
            box_norm=(best.x1 / w, best.y1 / h, best.x2 / w, best.y2 / h),
            lat=geo.lat if geo else None, lon=geo.lon if geo else None,
            uncertainty_m=geo.uncertainty_m if geo else None, time=frame.capture_time,
        ))  # fmt: skip
