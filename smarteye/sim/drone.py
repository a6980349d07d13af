"""A simulated drone for the demo and tests: a real drone recording with KLV metadata streamed live
as MPEG-TS over UDP (by ffmpeg, as a STANAG 4609 encoder would), and optionally the same flight as
live MAVLink (pymavlink), derived from the recording's KLV so video and telemetry agree.
"""

from __future__ import annotations

import logging
import math
import subprocess
import threading
import time
from pathlib import Path

import av
import numpy as np

from edge.geo.locator import pose_from_klv
from edge.geo.projection import camera_to_ned
from edge.telemetry.klv import KlvParser
from smarteye.sim.running import StartStop
from smarteye.wire.telemetry import SensorMetadata

log = logging.getLogger("smarteye.sim.drone")

TELEMETRY_HZ = 10.0
SIM_SYSTEM_ID = 1


def read_klv_track(video: Path) -> list[SensorMetadata]:
    """Every KLV sample of a recording, with its pts, in stream order."""
    parser = KlvParser()
    samples: list[SensorMetadata] = []
    with av.open(str(video)) as container:
        if not container.streams.data:
            raise ValueError(f"{video} carries no KLV data stream")
        for packet in container.demux(container.streams.data[0]):
            if packet.size:
                pts = float(packet.pts * packet.time_base) if packet.pts is not None else None
                samples += [m for m in parser.parse(bytes(packet), pts) if m.pts is not None]
    if not samples:
        raise ValueError(f"{video}: no usable KLV samples")
    return samples


def _euler_from_rotation(matrix: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in degrees of a body→NED rotation (Z-Y-X)."""
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -matrix[2, 0]))))
    roll = math.degrees(math.atan2(matrix[2, 1], matrix[2, 2]))
    yaw = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    return roll, pitch, yaw


class DroneSimulator(StartStop):
    """Streams `video` to udp://host:port (looped) and, if `mavlink_url` is set, its pose as MAVLink."""

    def __init__(
        self, video: Path, udp_host: str, udp_port: int, mavlink_url: str | None = None, loop: bool = True
    ) -> None:
        self.video = video
        self.udp_url = f"udp://{udp_host}:{udp_port}?pkt_size=1316"
        self.mavlink_url = mavlink_url
        self.loop = loop
        self.track = read_klv_track(video)
        self.duration = self.track[-1].pts - self.track[0].pts + 1 / TELEMETRY_HZ  # type: ignore[operator]
        self._ffmpeg: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    def start(self) -> None:
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re"]
        if self.loop:
            command += ["-stream_loop", "-1"]
        command += ["-i", str(self.video), "-map", "0", "-c", "copy", "-f", "mpegts", self.udp_url]
        self._ffmpeg = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.started_at = time.time()
        if self.mavlink_url:
            self._stop.clear()
            self._thread = threading.Thread(target=self._send_mavlink, name="sim-mavlink", daemon=True)
            self._thread.start()
        log.info("simulated drone: %s → %s%s", self.video.name, self.udp_url,
                 f", MAVLink → {self.mavlink_url}" if self.mavlink_url else "")  # fmt: skip

    def first_footprint(self) -> list[tuple[float, float]]:
        """Ground (lat, lon) of the image corners (UL, UR, LR, LL) of the first KLV sample that has them."""
        for sample in self.track:
            if sample.corners:
                return list(sample.corners)
        raise ValueError(f"{self.video.name}: no KLV sample gives the frame's corner coordinates")

    def sample_at(self, elapsed_s: float) -> SensorMetadata:
        """The KLV sample for a playback position (wrapping when looping)."""
        first = self.track[0].pts or 0.0
        position = first + (elapsed_s % self.duration if self.loop else elapsed_s)
        return min(self.track, key=lambda m: abs((m.pts or 0.0) - position))

    def _send_mavlink(self) -> None:
        from pymavlink import mavutil

        link = mavutil.mavlink_connection(self.mavlink_url, source_system=SIM_SYSTEM_ID, source_component=1)
        gimbal = mavutil.mavlink_connection(self.mavlink_url, source_system=SIM_SYSTEM_ID, source_component=154)
        mav, ml = link.mav, mavutil.mavlink
        sent_camera = 0.0
        assert self.started_at is not None
        while not self._stop.wait(1 / TELEMETRY_HZ):
            now = time.time()
            elapsed = now - self.started_at
            meta = self.sample_at(elapsed)
            pose = pose_from_klv(meta)
            if pose is None:
                continue
            boot_ms = int(elapsed * 1000) & 0xFFFFFFFF
            mav.heartbeat_send(
                ml.MAV_TYPE_FIXED_WING,
                ml.MAV_AUTOPILOT_ARDUPILOTMEGA,
                ml.MAV_MODE_FLAG_SAFETY_ARMED | ml.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
                10,
                ml.MAV_STATE_ACTIVE,
            )
            mav.global_position_int_send(
                boot_ms, int(pose.lat * 1e7), int(pose.lon * 1e7), int(pose.alt_m * 1000), int(pose.alt_m * 1000),
                0, 0, 0, int((pose.platform_yaw_deg % 360) * 100),
            )  # fmt: skip
            mav.attitude_send(boot_ms, math.radians(pose.platform_roll_deg), math.radians(pose.platform_pitch_deg),
                              math.radians(pose.platform_yaw_deg), 0, 0, 0)  # fmt: skip
            # The camera's full orientation in NED, as a stabilised gimbal with yaw locked to north reports it.
            roll, pitch, yaw = _euler_from_rotation(camera_to_ned(pose) @ _BODY_TO_OPTICAL)
            gimbal.mav.gimbal_device_attitude_status_send(
                0, 0, boot_ms, ml.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME | ml.GIMBAL_DEVICE_FLAGS_YAW_LOCK,
                _quaternion(roll, pitch, yaw), math.nan, math.nan, math.nan, 0,
            )  # fmt: skip
            if now - sent_camera > 1.0:
                sent_camera = now
                sensor_w = 10.0
                focal = sensor_w / 2 / math.tan(math.radians(pose.hfov_deg) / 2)
                sensor_h = 2 * focal * math.tan(math.radians(pose.vfov_deg or pose.hfov_deg * 0.75) / 2)
                gimbal.mav.camera_information_send(
                    boot_ms, b"SmartEye".ljust(32, b"\0"), b"sim".ljust(32, b"\0"), 1, focal, sensor_w, sensor_h,
                    720, 480, 0, 0, 0, b"",
                )  # fmt: skip
        link.close()
        gimbal.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
        if self._ffmpeg is not None and self._ffmpeg.poll() is None:
            self._ffmpeg.terminate()
            try:
                self._ffmpeg.wait(5)
            except subprocess.TimeoutExpired:
                self._ffmpeg.kill()


# camera_to_ned maps optical axes (x right, y down, z forward); Euler angles of a camera are those of
# its body-style frame (x forward, y right, z down), so undo the optical→body axis swap.
_BODY_TO_OPTICAL = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def _quaternion(roll: float, pitch: float, yaw: float) -> list[float]:
    from edge.telemetry.vehicle import euler_deg_to_quaternion

    return list(euler_deg_to_quaternion(roll, pitch, yaw))
