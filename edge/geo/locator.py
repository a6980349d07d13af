"""Geolocation stage: the ground position of each tracked object's footpoint (box bottom-centre),
from the pose of the camera at that frame's time.

Pose sources: the stream's own KLV (carried by the frame, matched to it by pts), a MAVLink link (matched by the
frame's capture time plus a configurable offset, interpolated), or for fixed cameras a calibrated
ground homography. Telemetry that is missing or older than `stale_after_s` yields no position and
an explicit status, never a silently reused old pose.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

from edge.config.geo import CameraConfig, GeoConfig, TelemetrySource
from edge.frame import Frame
from edge.geo.fusion import TrackFusion
from edge.geo.homography import GroundHomography
from edge.geo.projection import (
    CameraPose,
    GimbalFrame,
    PoseUncertainty,
    geolocate,
    ground_distances,
    project_pixels,
)
from edge.telemetry.klv import KlvParser
from edge.telemetry.mavlink_reader import MavlinkReader
from edge.track.tracker import TrackedBox
from smarteye.wire.messages import GeoPosition, GeoStatus
from smarteye.wire.telemetry import SensorMetadata, VehicleState

KLV_HISTORY = 256


def pose_from_klv(meta: SensorMetadata) -> CameraPose | None:
    """The camera pose exactly as MISB metadata states it: platform attitude, then the sensor's angles."""
    needed = (meta.sensor_lat, meta.sensor_lon, meta.sensor_alt_m, meta.platform_heading_deg, meta.hfov_deg)
    if any(v is None for v in needed) or meta.sensor_rel_az_deg is None or meta.sensor_rel_el_deg is None:
        return None
    return CameraPose(
        lat=meta.sensor_lat, lon=meta.sensor_lon, alt_m=meta.sensor_alt_m,
        platform_yaw_deg=meta.platform_heading_deg, platform_pitch_deg=meta.platform_pitch_deg or 0.0,
        platform_roll_deg=meta.platform_roll_deg or 0.0, gimbal_yaw_deg=meta.sensor_rel_az_deg,
        gimbal_pitch_deg=meta.sensor_rel_el_deg, gimbal_roll_deg=meta.sensor_rel_roll_deg or 0.0,
        gimbal_frame=GimbalFrame.BODY, hfov_deg=meta.hfov_deg, vfov_deg=meta.vfov_deg,
    )  # fmt: skip


def pose_from_vehicle(state: VehicleState, camera: CameraConfig) -> CameraPose | None:
    """A MAVLink vehicle's camera pose; the gimbal's reported attitude wins over the configured mount."""
    if state.lat is None or state.lon is None or state.alt_amsl_m is None or state.yaw_deg is None:
        return None
    hfov = camera.hfov_deg or state.camera_hfov_deg
    if hfov is None:
        return None
    if state.gimbal_pitch_deg is not None:
        frame = GimbalFrame.EARTH if state.gimbal_yaw_frame == "earth" else GimbalFrame.VEHICLE_YAW
        gimbal = (state.gimbal_yaw_deg or 0.0, state.gimbal_pitch_deg, state.gimbal_roll_deg or 0.0)
    else:
        frame, gimbal = GimbalFrame.BODY, (camera.mount_yaw_deg, camera.mount_pitch_deg, 0.0)
    return CameraPose(
        lat=state.lat, lon=state.lon, alt_m=state.alt_amsl_m, platform_yaw_deg=state.yaw_deg,
        platform_pitch_deg=state.pitch_deg or 0.0, platform_roll_deg=state.roll_deg or 0.0,
        gimbal_yaw_deg=gimbal[0], gimbal_pitch_deg=gimbal[1], gimbal_roll_deg=gimbal[2], gimbal_frame=frame,
        hfov_deg=hfov, vfov_deg=camera.vfov_deg or state.camera_vfov_deg,
    )  # fmt: skip


class StreamGeolocator:
    """Locates one stream's tracked objects on the ground, frame by frame."""

    name = "geolocation"

    def __init__(self, config: GeoConfig, mavlink: MavlinkReader | None = None) -> None:
        self.fusion = TrackFusion()  # each track's position fused over its life (uncertainty-weighted)
        self.config = config
        self.mavlink = mavlink
        self.homography = (
            GroundHomography([p.pixel for p in config.calibration], [(p.lat, p.lon) for p in config.calibration])
            if config.calibration
            else None
        )
        self.klv = KlvParser()
        self._klv_history: collections.deque[SensorMetadata] = collections.deque(maxlen=KLV_HISTORY)
        self._klv_seen = 0  # seq of the newest data packet parsed
        self.last_pose: CameraPose | None = None
        self.last_status: GeoStatus | None = None

    def _sigma(self, state: VehicleState | None = None) -> PoseUncertainty:
        cfg = self.config
        return PoseUncertainty(
            horizontal_m=(state.h_acc_m if state and state.h_acc_m else cfg.horizontal_error_m),
            vertical_m=(state.v_acc_m if state and state.v_acc_m else cfg.vertical_error_m),
            attitude_deg=cfg.attitude_error_deg,
            gimbal_deg=cfg.gimbal_error_deg,
        )

    def _klv_pose(self, frame: Frame) -> tuple[CameraPose | None, GeoStatus, float | None]:
        """The KLV sample nearest the frame's pts (KLV rides in the same stream, so pts is the shared clock)."""
        for packet in frame.data:
            if packet.seq <= self._klv_seen:
                continue
            self._klv_seen = packet.seq
            for meta in self.klv.parse(packet.payload, packet.pts):
                if meta.pts is not None:
                    self._klv_history.append(meta)
        if not self._klv_history or frame.pts is None:
            return None, GeoStatus.NO_TELEMETRY, None
        nearest = min(self._klv_history, key=lambda m: abs(m.pts - frame.pts))  # type: ignore[operator]
        age = abs(nearest.pts - frame.pts)  # type: ignore[operator]
        if age > self.config.telemetry.stale_after_s:  # type: ignore[union-attr]
            return None, GeoStatus.STALE_TELEMETRY, age
        pose = pose_from_klv(nearest)
        return pose, (GeoStatus.OK if pose else GeoStatus.NO_TELEMETRY), age

    def _mavlink_pose(self, frame: Frame) -> tuple[CameraPose | None, GeoStatus, float | None, VehicleState | None]:
        telemetry = self.config.telemetry
        assert telemetry is not None and self.mavlink is not None
        t = frame.capture_time + telemetry.time_offset_s
        state = self.mavlink.state_at(telemetry.system_id, t)
        if state is None:
            latest = self.mavlink.state(telemetry.system_id)
            if latest is None or latest.time is None:
                return None, GeoStatus.NO_TELEMETRY, None, None
            return None, GeoStatus.STALE_TELEMETRY, abs(t - latest.time), None
        age = abs(t - state.time) if state.time is not None else None
        pose = pose_from_vehicle(state, self.config.camera)
        return pose, (GeoStatus.OK if pose else GeoStatus.NO_TELEMETRY), age, state

    def locate(self, frame: Frame, tracks: Sequence[TrackedBox]) -> tuple[list[GeoPosition | None], GeoStatus]:
        """Ground positions of the tracks' footpoints in this frame, and why there are none if so."""
        feet = np.array([[(t.x1 + t.x2) / 2, t.y2] for t in tracks], dtype=float).reshape(-1, 2)
        if self.homography is not None:
            found = self.homography.locate(feet, min_uncertainty_m=self.config.horizontal_error_m) if len(feet) else []
            return [_position(g, "homography", None) for g in found], GeoStatus.OK
        state = None
        if self.config.telemetry.source is TelemetrySource.KLV:  # type: ignore[union-attr]
            pose, status, age = self._klv_pose(frame)
            source = "klv"
        else:
            pose, status, age, state = self._mavlink_pose(frame)
            source = "mavlink"
        self.last_pose, self.last_status = pose, status
        if pose is None or not len(feet):
            return [None] * len(tracks), status
        found = geolocate(pose, feet, frame.width, frame.height, self.config.ground_elevation_m, self._sigma(state))
        return [_position(g, source, age) for g in found], status

    def ground_widths(self, frame: Frame, tracks: Sequence[TrackedBox]) -> list[float | None]:
        """Each box's width on the ground (between its bottom corners), in metres, from the pose `locate` used
        for this frame; None where there is no pose or a corner is above the horizon. Rules filter on it."""
        if not tracks:
            return []
        left = np.array([[t.x1, t.y2] for t in tracks], dtype=float)
        right = np.array([[t.x2, t.y2] for t in tracks], dtype=float)
        if self.homography is not None:
            widths = self.homography.ground_distances(left, right)
        elif self.last_pose is not None:
            elevation = self.config.ground_elevation_m
            widths = ground_distances(self.last_pose, left, right, frame.width, frame.height, elevation)
        else:
            return [None] * len(tracks)
        return [round(float(w), 3) if np.isfinite(w) else None for w in widths]

    def ground_sample_distance(self, width: int, height: int) -> float | None:
        """Metres on the ground per pixel at the frame's centre, from the calibration or the last located pose
        (the previous frame's: detection runs before this stage); None without either. Sliced detection sizes
        its tiles in metres with it (detector.slicing.tile_m)."""
        span = max(2.0, width / 20)  # a short horizontal segment through the centre
        left, right = [[width / 2 - span / 2, height / 2]], [[width / 2 + span / 2, height / 2]]
        if self.homography is not None:
            metres = self.homography.ground_distances(left, right)
        elif self.last_pose is not None:
            metres = ground_distances(self.last_pose, np.array(left), np.array(right), width, height,
                                      self.config.ground_elevation_m)  # fmt: skip
        else:
            return None
        value = float(metres[0]) / span
        return value if math.isfinite(value) and value > 0 else None

    def process(self, frame: Frame) -> Frame:
        """Stage: each track's ground position and ground width, and the frame's geo status."""
        positions, frame.geo_status = self.locate(frame, frame.tracks)
        located = any(p is not None for p in positions)
        widths = self.ground_widths(frame, frame.tracks) if located else [None] * len(frame.tracks)
        for track, position, width in zip(frame.tracks, positions, widths, strict=True):
            track.geo = position
            track.size_m = width if position is not None else None
            track.geo_fused = self.fusion.update(track.track_id, position, frame.capture_time)
        self.fusion.forget(frame.capture_time)
        return frame

    def latest_telemetry(self) -> tuple[VehicleState | None, SensorMetadata | None]:
        """The newest vehicle state (MAVLink) or KLV sample, for publishing."""
        if self.mavlink is not None:
            return self.mavlink.state(self.config.telemetry.system_id), None  # type: ignore[union-attr]
        if not self._klv_history:
            return None, None
        sensor = self._klv_history[-1]
        report = self.klv.vmti[-1] if self.klv.vmti else None  # the aircraft's detections (ST 0903), if recent
        window = self.config.telemetry.stale_after_s  # type: ignore[union-attr]
        if sensor.vmti is None and report is not None and report.pts is not None and sensor.pts is not None:
            sensor = sensor.model_copy(update={"vmti": report}) if abs(report.pts - sensor.pts) <= window else sensor
        return None, sensor

    def footprint(self, width: int, height: int) -> list[tuple[float, float]] | None:
        """The camera's ground footprint (image corners) at the last located frame, for the pilot map."""
        if self.last_pose is None:
            return None
        corners = project_pixels(self.last_pose, [[0, 0], [width, 0], [width, height], [0, height]], width, height,
                                 self.config.ground_elevation_m)  # fmt: skip
        if any(c is None for c in corners):
            return None
        return [(c.lat, c.lon) for c in corners]  # type: ignore[union-attr]


def _position(found, source: str, age: float | None) -> GeoPosition | None:
    if found is None:
        return None
    uncertainty = found.uncertainty_m if math.isfinite(found.uncertainty_m) else None
    return GeoPosition(
        lat=found.lat, lon=found.lon, uncertainty_m=uncertainty, source=source,
        telemetry_age_s=round(age, 3) if age is not None else None,
    )  # fmt: skip
