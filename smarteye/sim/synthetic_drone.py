"""A drone made up for the demo when the real aerial recording is not on the machine: it circles a
point at a steady height with its camera on a stabilised gimbal looking at that point, and says so in
synthetic MAVLink (heartbeat, position, attitude, gimbal attitude, camera information) as an autopilot
and its gimbal would. Paired with any video (the demo uses the site camera's scene), the edge's MAVLink
geolocation, the station's pilot map and the drone's ground positions all work without the recording."""

from __future__ import annotations

import logging
import math
import threading
import time

from edge.telemetry.mavlink_reader import ensure_mavlink2
from edge.telemetry.vehicle import euler_deg_to_quaternion
from smarteye.sim.running import StartStop

log = logging.getLogger("smarteye.sim.synthetic_drone")

EARTH_RADIUS_M = 6_378_137.0
RATE_HZ = 10.0
SYSTEM_ID = 1
GIMBAL_COMPONENT = 154


class SyntheticDroneFlight(StartStop):
    """Sends the MAVLink of a drone circling (lat, lon) to `mavlink_url` (e.g. udpout:127.0.0.1:14550)."""

    def __init__(
        self,
        mavlink_url: str,
        lat: float,
        lon: float,
        altitude_m: float = 40.0,
        radius_m: float = 60.0,
        lap_s: float = 180.0,
        hfov_deg: float = 60.0,
        image_size: tuple[int, int] = (768, 576),
    ) -> None:
        self.mavlink_url = mavlink_url
        self.lat, self.lon = lat, lon
        self.altitude_m, self.radius_m, self.lap_s = altitude_m, radius_m, lap_s
        self.hfov_deg, self.image_size = hfov_deg, image_size
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0  # position messages sent (tests, the demo's status)

    def pose_at(self, elapsed_s: float) -> tuple[float, float, float, float]:
        """(lat, lon, heading °, gimbal pitch °) after `elapsed_s`: on the circle, looking at its centre."""
        angle = 2 * math.pi * (elapsed_s / self.lap_s)
        north, east = self.radius_m * math.cos(angle), self.radius_m * math.sin(angle)
        lat = self.lat + math.degrees(north / EARTH_RADIUS_M)
        lon = self.lon + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(self.lat))))
        heading = (math.degrees(math.atan2(-east, -north))) % 360  # towards the centre
        pitch = -math.degrees(math.atan2(self.altitude_m, self.radius_m))
        return lat, lon, heading, pitch

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="synthetic-drone", daemon=True)
        self._thread.start()
        log.info("synthetic drone circling %.5f, %.5f at %.0f m → %s", self.lat, self.lon, self.altitude_m,
                 self.mavlink_url)  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)

    def _run(self) -> None:
        from pymavlink import mavutil

        ensure_mavlink2()  # GIMBAL_DEVICE_ATTITUDE_STATUS and CAMERA_INFORMATION are MAVLink 2 messages
        link = mavutil.mavlink_connection(self.mavlink_url, source_system=SYSTEM_ID, source_component=1)
        gimbal = mavutil.mavlink_connection(self.mavlink_url, source_system=SYSTEM_ID,
                                            source_component=GIMBAL_COMPONENT)  # fmt: skip
        ml = mavutil.mavlink
        started = time.time()
        sent_camera = 0.0
        try:
            while not self._stop.wait(1 / RATE_HZ):
                now = time.time()
                elapsed = now - started
                lat, lon, heading, pitch = self.pose_at(elapsed)
                boot_ms = int(elapsed * 1000) & 0xFFFFFFFF
                try:
                    link.mav.heartbeat_send(ml.MAV_TYPE_QUADROTOR, ml.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                            ml.MAV_MODE_FLAG_SAFETY_ARMED | ml.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
                                            5, ml.MAV_STATE_ACTIVE)  # fmt: skip
                    speed = 2 * math.pi * self.radius_m / self.lap_s
                    course = math.radians(heading - 90)  # counter-clockwise seen from above: velocity ⟂ radius
                    link.mav.global_position_int_send(
                        boot_ms, int(lat * 1e7), int(lon * 1e7), int(self.altitude_m * 1000),
                        int(self.altitude_m * 1000), int(speed * math.cos(course) * 100),
                        int(speed * math.sin(course) * 100), 0, int(heading * 100),
                    )  # fmt: skip
                    link.mav.attitude_send(boot_ms, 0.0, 0.0, math.radians(heading), 0, 0, 0)
                    gimbal.mav.gimbal_device_attitude_status_send(
                        0, 0, boot_ms, ml.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME | ml.GIMBAL_DEVICE_FLAGS_YAW_LOCK,
                        list(euler_deg_to_quaternion(0.0, pitch, heading)), math.nan, math.nan, math.nan, 0,
                    )  # fmt: skip
                    if now - sent_camera > 1.0:
                        sent_camera = now
                        width, height = self.image_size
                        sensor_w = 10.0
                        focal = sensor_w / 2 / math.tan(math.radians(self.hfov_deg) / 2)
                        gimbal.mav.camera_information_send(
                            boot_ms, b"SmartEye".ljust(32, b"\0"), b"synthetic".ljust(32, b"\0"), 1, focal,
                            sensor_w, sensor_w * height / width, width, height, 0, 0, 0, b"",
                        )  # fmt: skip
                    self.sent += 1
                except OSError as error:  # nobody listening yet (ICMP refused): keep flying
                    log.debug("synthetic drone: %s", error)
        finally:
            link.close()
            gimbal.close()
