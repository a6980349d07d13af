"""The edge as a MAVLink camera on the drone's link (camera protocol v2), so QGroundControl finds its video.

A MAVLink camera is a component (id 100, MAV_COMP_ID_CAMERA) of the vehicle's system that sends a
HEARTBEAT (MAV_TYPE_CAMERA) and answers MAV_CMD_REQUEST_MESSAGE (and the older REQUEST_CAMERA_INFORMATION /
REQUEST_VIDEO_STREAM_INFORMATION) with CAMERA_INFORMATION, VIDEO_STREAM_INFORMATION and VIDEO_STREAM_STATUS.
QGroundControl plays the advertised URI (here the annotated MPEG-TS over UDP). While the stream has a
tracked object, the camera also reports it: CAMERA_TRACKING_IMAGE_STATUS (its box, normalised) and,
when the object is geolocated, CAMERA_TRACKING_GEO_STATUS (its ground position and accuracy).
Each command addressed to the camera gets exactly one COMMAND_ACK; commands for other components are
not ours to answer.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymavlink import mavutil

CAMERA_COMPONENT = 100  # MAV_COMP_ID_CAMERA
TRACKING_HZ = 2.0


@dataclass(frozen=True, slots=True)
class VideoStream:
    """What the camera advertises: where to play the stream and what it is."""

    name: str
    uri: str  # e.g. udp://0.0.0.0:5600 (QGroundControl listens there)
    width: int
    height: int
    fps: float
    hfov_deg: float = 0.0
    kind: str = "mpegts"  # mpegts | rtsp


@dataclass(frozen=True, slots=True)
class TrackedTarget:
    """The object the camera reports as tracked: its box (0..1 of the frame) and, if known, ground position."""

    box_norm: tuple[float, float, float, float]
    lat: float | None = None
    lon: float | None = None
    uncertainty_m: float | None = None
    time: float = 0.0


class TargetBoard:
    """The latest tracked target of one stream, written by the pipeline, read by the camera component."""

    def __init__(self, stale_after_s: float = 2.0) -> None:
        self._target: TrackedTarget | None = None
        self._lock = threading.Lock()
        self.stale_after_s = stale_after_s

    def put(self, target: TrackedTarget | None) -> None:
        with self._lock:
            self._target = target

    def get(self) -> TrackedTarget | None:
        with self._lock:
            target = self._target
        if target is None or time.time() - target.time > self.stale_after_s:
            return None
        return target


Send = Callable[[Any], None]


class MavlinkCamera:
    """Answers as camera component 100 of `system_id` on a link the MavlinkReader owns."""

    component_id = CAMERA_COMPONENT

    def __init__(self, video: Callable[[], VideoStream | None], targets: TargetBoard, system_id: int = 1) -> None:
        self.video = video
        self.targets = targets
        self.system_id = system_id
        self._next_heartbeat = 0.0
        self._next_tracking = 0.0
        self.requests = 0

    def tick(self, send: Send) -> None:
        """Called by the link's thread: heartbeat at 1 Hz, tracking reports at TRACKING_HZ while tracking."""
        mav = mavutil.mavlink
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + 1.0
            send(mav.MAVLink_heartbeat_message(mav.MAV_TYPE_CAMERA, mav.MAV_AUTOPILOT_INVALID, 0, 0,
                                               mav.MAV_STATE_ACTIVE, 3))  # fmt: skip
        if now >= self._next_tracking:
            self._next_tracking = now + 1.0 / TRACKING_HZ
            target = self.targets.get()
            if target is not None:
                for message in self._tracking(target):
                    send(message)

    def on_message(self, msg: Any, send: Send) -> None:
        """A command addressed to this camera (or to every component of our system) gets its answer."""
        if msg.get_type() != "COMMAND_LONG":
            return
        if msg.target_system not in (0, self.system_id) or msg.target_component not in (0, CAMERA_COMPONENT):
            return
        mav = mavutil.mavlink
        wanted: list[int] = []
        if msg.command == mav.MAV_CMD_REQUEST_MESSAGE:
            wanted = [int(msg.param1)]
        elif msg.command == mav.MAV_CMD_REQUEST_CAMERA_INFORMATION:
            wanted = [mav.MAVLINK_MSG_ID_CAMERA_INFORMATION]
        elif msg.command == mav.MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION:
            wanted = [mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION]
        elif msg.command == mav.MAV_CMD_REQUEST_VIDEO_STREAM_STATUS:
            wanted = [mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS]
        elif msg.target_component != CAMERA_COMPONENT:
            return  # a broadcast command we do not implement: the autopilot answers it
        replies = [r for r in (self._message(w) for w in wanted) if r is not None]
        result = mav.MAV_RESULT_ACCEPTED if replies else (
            mav.MAV_RESULT_UNSUPPORTED if not wanted else mav.MAV_RESULT_DENIED)  # fmt: skip
        if msg.target_component == 0 and not replies:
            return  # "every component": only those that have the message answer
        self.requests += 1
        send(mav.MAVLink_command_ack_message(msg.command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()))
        for reply in replies:
            send(reply)

    # -- messages ------------------------------------------------------------------------------------
    def _message(self, message_id: int) -> Any | None:
        mav = mavutil.mavlink
        boot_ms = int(time.monotonic() * 1000) & 0xFFFFFFFF
        video = self.video()
        if message_id == mav.MAVLINK_MSG_ID_CAMERA_INFORMATION:
            flags = mav.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM if video else 0
            width, height = (video.width, video.height) if video else (0, 0)
            return mav.MAVLink_camera_information_message(
                boot_ms, list(b"SmartEye".ljust(32, b"\0")), list(b"edge node".ljust(32, b"\0")), 0, math.nan,
                math.nan, math.nan, width, height, 0, flags, 0, b"",
            )  # fmt: skip
        if video is None:
            return None
        stream_type = mav.VIDEO_STREAM_TYPE_RTSP if video.kind == "rtsp" else mav.VIDEO_STREAM_TYPE_MPEG_TS
        if message_id == mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION:
            return mav.MAVLink_video_stream_information_message(
                1, 1, stream_type, mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING, video.fps, video.width, video.height, 0, 0,
                round(video.hfov_deg), video.name.encode()[:32], video.uri.encode()[:160],
            )  # fmt: skip
        if message_id == mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS:
            return mav.MAVLink_video_stream_status_message(
                1, mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING, video.fps, video.width, video.height, 0, 0,
                round(video.hfov_deg),
            )  # fmt: skip
        return None

    def _tracking(self, target: TrackedTarget) -> list[Any]:
        mav = mavutil.mavlink
        x1, y1, x2, y2 = target.box_norm
        image = mav.MAVLink_camera_tracking_image_status_message(
            mav.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE, mav.CAMERA_TRACKING_MODE_RECTANGLE,
            mav.CAMERA_TRACKING_TARGET_DATA_IN_STATUS, math.nan, math.nan, math.nan, x1, y1, x2, y2,
        )  # fmt: skip
        if target.lat is None or target.lon is None:
            return [image]
        accuracy = target.uncertainty_m if target.uncertainty_m is not None else math.nan
        geo = mav.MAVLink_camera_tracking_geo_status_message(
            mav.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE, int(target.lat * 1e7), int(target.lon * 1e7), math.nan,
            accuracy, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
        )  # fmt: skip
        return [image, geo]
