"""A simulated multicopter that speaks MAVLink as ArduCopter does, for tests and the demo.

No autopilot can be installed here, so commanding is tested against this simulator. It follows what a
real ArduCopter (4.7-dev, software in the loop) was seen to do, not what would be convenient:

- HEARTBEAT at 1 Hz from component 1 (MAV_TYPE_QUADROTOR, MAV_AUTOPILOT_ARDUPILOTMEGA, custom_mode =
  ArduCopter mode number); GLOBAL_POSITION_INT reads 0/0 until the GPS has a fix and the EKF a position;
  arming before that fails with MAV_RESULT_FAILED and a "PreArm: Need Position Estimate" STATUSTEXT
  (sent every few seconds while the estimate is missing, as ArduCopter nags).
- COMMAND_LONG and COMMAND_INT are each answered by one COMMAND_ACK (accepted, denied, failed,
  temporarily rejected, unsupported), never retried by the vehicle.
- GUIDED: SET_POSITION_TARGET_GLOBAL_INT (no ACK, as ArduCopter) and MAV_CMD_DO_REPOSITION (as
  COMMAND_INT; denied outside GUIDED unless MAV_DO_REPOSITION_FLAGS_CHANGE_MODE); NAV_TAKEOFF only when
  armed in GUIDED; RTL and LAND by command or mode.
- The mission protocol (upload: MISSION_COUNT → MISSION_REQUEST_INT… → MISSION_ACK; download; clear),
  flown in AUTO with MISSION_CURRENT and MISSION_ITEM_REACHED.
- A gimbal manager (GIMBAL_MANAGER_INFORMATION pitch −90…+45°, GIMBAL_MANAGER_STATUS,
  GIMBAL_DEVICE_ATTITUDE_STATUS from the gimbal's own component 154; no MOUNT_STATUS) taking
  DO_GIMBAL_MANAGER_PITCHYAW, DO_MOUNT_CONTROL and DO_SET_ROI_LOCATION; and a camera answering
  MAV_CMD_REQUEST_MESSAGE for CAMERA_INFORMATION (empty vendor/model), CAMERA_SETTINGS,
  CAMERA_CAPTURE_STATUS and CAMERA_FOV_STATUS.
- A simple kinematic flight model: horizontal speed and acceleration limits as ArduCopter's defaults
  (WPNAV_SPEED 10 m/s, WPNAV_ACCEL 2.5 m/s²), climb 2.5 m/s, gimbal slew 90 °/s.

`speedup` runs the simulated clock faster than the wall clock (as SITL's SIM_SPEEDUP) so tests need not
wait the real 30–40 s for a position estimate; messages keep their wall-clock rates.

The vehicle listens like SITL does (`tcpin:127.0.0.1:PORT`, one ground station at a time) or sends to a
ground station (`udpout:HOST:PORT`); see `CopterSimulator(url=…)`.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pymavlink import mavutil

from edge.telemetry.mavlink_reader import ensure_mavlink2
from edge.telemetry.vehicle import euler_deg_to_quaternion
from smarteye.sim.running import StartStop

log = logging.getLogger("smarteye.sim.copter")
ensure_mavlink2()  # the GIMBAL_* and CAMERA_* messages exist only in the MAVLink 2 modules
mavlink = mavutil.mavlink

EARTH_RADIUS_M = 6_378_137.0
GIMBAL_COMPONENT = mavlink.MAV_COMP_ID_GIMBAL  # 154
AUTOPILOT_COMPONENT = mavlink.MAV_COMP_ID_AUTOPILOT1


class Mode:
    """ArduCopter's flight mode numbers (custom_mode of HEARTBEAT)."""

    STABILIZE = 0
    AUTO = 3
    GUIDED = 4
    LOITER = 5
    RTL = 6
    LAND = 9
    BRAKE = 17

    NAMES: ClassVar[dict[int, str]] = {
        0: "STABILIZE",
        3: "AUTO",
        4: "GUIDED",
        5: "LOITER",
        6: "RTL",
        9: "LAND",
        17: "BRAKE",
    }


@dataclass(slots=True)
class FlightModel:
    """Limits of the kinematic model, defaults as ArduCopter's parameters."""

    max_speed_m_s: float = 10.0  # WPNAV_SPEED 1000 cm/s
    accel_m_s2: float = 2.5  # WPNAV_ACCEL 250 cm/s/s
    climb_m_s: float = 2.5  # WPNAV_SPEED_UP 250 cm/s
    descent_m_s: float = 1.5  # WPNAV_SPEED_DN 150 cm/s
    land_m_s: float = 0.5  # LAND_SPEED 50 cm/s
    arrive_m: float = 2.0  # WPNAV_RADIUS 200 cm: a waypoint is reached within this
    gimbal_slew_deg_s: float = 90.0


@dataclass(slots=True)
class MissionItem:
    seq: int
    frame: int
    command: int
    params: tuple[float, float, float, float]
    lat: float
    lon: float
    alt: float


@dataclass
class CopterState:
    """What the vehicle knows about itself (simulated clock seconds, metres, degrees)."""

    home_lat: float
    home_lon: float
    home_alt_amsl: float
    lat: float = 0.0
    lon: float = 0.0
    rel_alt: float = 0.0
    vn: float = 0.0  # m/s north
    ve: float = 0.0  # m/s east
    vz: float = 0.0  # m/s up
    heading_deg: float = 0.0
    mode: int = Mode.STABILIZE
    armed: bool = False
    flying: bool = False
    target: tuple[float, float, float] | None = None  # lat, lon, relative alt
    gimbal_pitch: float = 0.0
    gimbal_yaw: float = 0.0  # relative to the vehicle's heading
    gimbal_target: tuple[float, float] = (0.0, 0.0)
    roi: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
    mission: list[MissionItem] = field(default_factory=list)
    mission_current: int = 0
    reached: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.lat, self.lon = self.home_lat, self.home_lon


def offset_m(lat: float, lon: float, lat2: float, lon2: float) -> tuple[float, float]:
    """North and east metres from (lat, lon) to (lat2, lon2); flat earth, fine over a few km."""
    north = math.radians(lat2 - lat) * EARTH_RADIUS_M
    east = math.radians(lon2 - lon) * EARTH_RADIUS_M * math.cos(math.radians(lat))
    return north, east


def moved(lat: float, lon: float, north: float, east: float) -> tuple[float, float]:
    return (
        lat + math.degrees(north / EARTH_RADIUS_M),
        lon + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(lat)))),
    )


def _approach(value: float, target: float, step: float) -> float:
    return target if abs(target - value) <= step else value + math.copysign(step, target - value)


def _quaternion(roll_deg: float, pitch_deg: float, yaw_deg: float) -> list[float]:
    return list(euler_deg_to_quaternion(roll_deg, pitch_deg, yaw_deg))


class CopterSimulator(StartStop):
    """One simulated copter on one MAVLink link; `start()` runs it in a thread, `stop()` ends it."""

    def __init__(
        self,
        url: str,
        *,
        home: tuple[float, float, float] = (36.3725, 127.3650, 60.0),
        system_id: int = 1,
        speedup: float = 1.0,
        position_estimate_after_s: float = 35.0,
        model: FlightModel | None = None,
        camera_hfov_deg: float = 70.0,
        camera_vfov_deg: float = 43.0,
        telemetry_out: tuple[str, ...] = (),
    ) -> None:
        self.url = url
        self.telemetry_out = telemetry_out  # more links that get everything it sends, as MAVProxy's --out
        self.system_id = system_id
        self.speedup = speedup
        self.position_estimate_after_s = position_estimate_after_s
        self.model = model or FlightModel()
        self.camera_fov = (camera_hfov_deg, camera_vfov_deg)
        self.state = CopterState(*home)
        self.sim_time = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link: Any = None
        self._outs: list[Any] = []
        self._gimbal_link: Any = None
        self._upload: dict[str, Any] | None = None  # mission upload in progress
        self._last_nag = -10.0
        self.commands: list[tuple[int, int]] = []  # (command, result) in the order answered

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> CopterSimulator:
        self._link = mavutil.mavlink_connection(
            self.url, source_system=self.system_id, source_component=AUTOPILOT_COMPONENT
        )
        self._outs = [
            mavutil.mavlink_connection(out, source_system=self.system_id, source_component=AUTOPILOT_COMPONENT)
            for out in self.telemetry_out
        ]
        self._thread = threading.Thread(target=self._run, name=f"copter-{self.system_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for link in [self._link, *self._outs]:
            if link is not None:
                link.close()

    @property
    def has_position(self) -> bool:
        return self.sim_time >= self.position_estimate_after_s

    def point_camera(self, pitch_deg: float, yaw_deg: float = 0.0) -> None:
        """Point the gimbal by hand (as a pilot's sticks would), dropping any region of interest."""
        with self._lock:
            self.state.roi, self.state.gimbal_target = None, (pitch_deg, yaw_deg)

    def snapshot(self) -> CopterState:
        """A copy of the state, for tests to compare with what the ground station was told."""
        with self._lock:
            return copy.deepcopy(self.state)

    # -- main loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        step = 0.05
        last = time.monotonic()
        next_1hz = next_4hz = next_10hz = 0.0
        while not self._stop.is_set():
            try:
                message = self._link.recv_match(blocking=True, timeout=step)
            except (OSError, ConnectionError):  # a TCP ground station went away: listen for the next
                message = None
            now = time.monotonic()
            dt = (now - last) * self.speedup
            last = now
            with self._lock:
                while dt > 1e-9:  # integrate in small steps whatever the speed-up
                    sub = min(dt, 0.02)
                    self.sim_time += sub
                    self._fly(sub)
                    dt -= sub
                if message is not None:
                    self._handle(message)
                try:
                    if now >= next_1hz:
                        next_1hz = now + 1.0
                        self._send_1hz()
                    if now >= next_4hz:
                        next_4hz = now + 0.25
                        self._send_position()
                    if now >= next_10hz:
                        next_10hz = now + 0.1
                        self._send_gimbal_attitude()
                except (OSError, ConnectionError):
                    pass

    def _send(self, message: Any, component: int = AUTOPILOT_COMPONENT) -> None:
        for link in (self._link, *self._outs):
            link.mav.srcComponent = component
            try:
                link.mav.send(message)
            except OSError:
                if link is self._link:
                    raise  # the ground station's link: its loop handles it
            finally:
                link.mav.srcComponent = AUTOPILOT_COMPONENT

    def _boot_ms(self) -> int:
        return int(self.sim_time * 1000) & 0xFFFFFFFF

    # -- flight ------------------------------------------------------------------------------------
    def _fly(self, dt: float) -> None:
        s, m = self.state, self.model
        if s.armed and s.flying:
            if s.mode == Mode.AUTO:
                self._fly_mission()
            if s.mode == Mode.RTL:
                s.target = (s.home_lat, s.home_lon, max(s.rel_alt, 15.0))
                north, east = offset_m(s.lat, s.lon, s.home_lat, s.home_lon)
                if math.hypot(north, east) < m.arrive_m:
                    s.mode = Mode.LAND
            if s.mode == Mode.LAND:
                s.target = (s.lat, s.lon, 0.0)
            if s.mode == Mode.BRAKE:
                s.target = (s.lat, s.lon, s.rel_alt)
            self._move(dt)
            if s.mode == Mode.LAND and s.rel_alt <= 0.05:
                s.rel_alt, s.flying, s.armed, s.vz = 0.0, False, False, 0.0  # auto-disarm on landing
                s.target = None
        else:
            s.vn = s.ve = s.vz = 0.0
        self._aim_gimbal(dt)

    def _move(self, dt: float) -> None:
        s, m = self.state, self.model
        if s.target is None:
            s.vn = s.ve = 0.0
            return
        lat, lon, alt = s.target
        north, east = offset_m(s.lat, s.lon, lat, lon)
        distance = math.hypot(north, east)
        # Speed towards the target, limited so the copter can still stop in time (v² = 2·a·d).
        wanted = min(m.max_speed_m_s, math.sqrt(2 * m.accel_m_s2 * distance)) if distance > 0.01 else 0.0
        want_n = wanted * north / distance if distance > 0.01 else 0.0
        want_e = wanted * east / distance if distance > 0.01 else 0.0
        dv = m.accel_m_s2 * dt
        s.vn = _approach(s.vn, want_n, dv)
        s.ve = _approach(s.ve, want_e, dv)
        step_n, step_e = s.vn * dt, s.ve * dt
        if math.hypot(step_n, step_e) >= distance:
            s.lat, s.lon = lat, lon
        else:
            s.lat, s.lon = moved(s.lat, s.lon, step_n, step_e)
        if math.hypot(s.vn, s.ve) > 0.5:
            s.heading_deg = math.degrees(math.atan2(s.ve, s.vn)) % 360
        rate = m.land_m_s if s.mode == Mode.LAND else (m.climb_m_s if alt > s.rel_alt else m.descent_m_s)
        s.vz = math.copysign(min(rate, abs(alt - s.rel_alt) / dt if dt > 0 else 0.0), alt - s.rel_alt)
        s.rel_alt = _approach(s.rel_alt, alt, rate * dt)

    def _fly_mission(self) -> None:
        s = self.state
        items = [i for i in s.mission if i.seq > 0]  # item 0 is home, as ArduPilot stores it
        current = next((i for i in items if i.seq == s.mission_current), None)
        if current is None:
            if items and s.mission_current <= items[-1].seq:
                s.mission_current = items[0].seq
            return
        if current.command == mavlink.MAV_CMD_NAV_TAKEOFF:
            s.target = (s.lat, s.lon, current.alt)
            done = abs(s.rel_alt - current.alt) < 0.5
        elif current.command == mavlink.MAV_CMD_NAV_WAYPOINT:
            s.target = (current.lat, current.lon, current.alt)
            north, east = offset_m(s.lat, s.lon, current.lat, current.lon)
            done = math.hypot(north, east) < self.model.arrive_m and abs(s.rel_alt - current.alt) < 1.0
        elif current.command == mavlink.MAV_CMD_DO_SET_ROI_LOCATION:
            s.roi = (current.lat, current.lon, current.alt + s.home_alt_amsl)
            done = True
        elif current.command == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            s.mode = Mode.RTL
            done = True
        elif current.command == mavlink.MAV_CMD_NAV_LAND:
            s.mode = Mode.LAND
            done = True
        else:
            done = True  # other DO items are taken and passed, as unsupported ones are in ArduCopter
        if done and current.seq not in s.reached:
            s.reached.add(current.seq)
            if current.command in (mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_NAV_TAKEOFF):
                self._send(mavlink.MAVLink_mission_item_reached_message(current.seq))
            later = [i.seq for i in items if i.seq > current.seq]
            if later:
                s.mission_current = later[0]
            self._send(mavlink.MAVLink_mission_current_message(s.mission_current, len(s.mission)))

    def _aim_gimbal(self, dt: float) -> None:
        s = self.state
        if s.roi is not None:
            north, east = offset_m(s.lat, s.lon, s.roi[0], s.roi[1])
            down = (s.home_alt_amsl + s.rel_alt) - s.roi[2]
            bearing = math.degrees(math.atan2(east, north))
            s.gimbal_target = (
                max(-90.0, min(45.0, -math.degrees(math.atan2(down, math.hypot(north, east))))),
                (bearing - s.heading_deg + 180) % 360 - 180,
            )
        step = self.model.gimbal_slew_deg_s * dt
        s.gimbal_pitch = _approach(s.gimbal_pitch, s.gimbal_target[0], step)
        s.gimbal_yaw = _approach(s.gimbal_yaw, s.gimbal_target[1], step)

    # -- telemetry ---------------------------------------------------------------------------------
    def _send_1hz(self) -> None:
        s = self.state
        base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (mavlink.MAV_MODE_FLAG_SAFETY_ARMED if s.armed else 0)
        status = mavlink.MAV_STATE_ACTIVE if s.armed else mavlink.MAV_STATE_STANDBY
        self._send(mavlink.MAVLink_heartbeat_message(
            mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA, base, s.mode, status, 3
        ))  # fmt: skip
        self._send(mavlink.MAVLink_heartbeat_message(
            mavlink.MAV_TYPE_GIMBAL, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, mavlink.MAV_STATE_ACTIVE, 3
        ), GIMBAL_COMPONENT)  # fmt: skip
        fix = 3 if self.sim_time >= self.position_estimate_after_s * 0.5 else 0
        lat, lon = (int(s.lat * 1e7), int(s.lon * 1e7)) if fix else (0, 0)
        self._send(mavlink.MAVLink_gps_raw_int_message(
            int(self.sim_time * 1e6), fix, lat, lon, int((s.home_alt_amsl + s.rel_alt) * 1000), 80 if fix else 9999,
            120 if fix else 9999, int(math.hypot(s.vn, s.ve) * 100), int(s.heading_deg * 100), 12 if fix else 0,
        ))  # fmt: skip
        landed = mavlink.MAV_LANDED_STATE_IN_AIR if s.flying else mavlink.MAV_LANDED_STATE_ON_GROUND
        self._send(mavlink.MAVLink_extended_sys_state_message(mavlink.MAV_VTOL_STATE_UNDEFINED, landed))
        self._send(mavlink.MAVLink_gimbal_manager_status_message(
            self._boot_ms(), mavlink.GIMBAL_MANAGER_FLAGS_NEUTRAL if s.roi is None else 0, GIMBAL_COMPONENT,
            self.system_id, AUTOPILOT_COMPONENT, 0, 0,
        ))  # fmt: skip
        if not self.has_position and self.sim_time - self._last_nag >= 5.0:
            self._last_nag = self.sim_time
            self._statustext("PreArm: Need Position Estimate")

    def _send_position(self) -> None:
        s = self.state
        if self.has_position:
            lat, lon = int(s.lat * 1e7), int(s.lon * 1e7)
            alt, rel = int((s.home_alt_amsl + s.rel_alt) * 1000), int(s.rel_alt * 1000)
        else:
            lat = lon = alt = rel = 0  # ArduCopter reads 0/0 until the EKF has a position
        self._send(mavlink.MAVLink_global_position_int_message(
            self._boot_ms(), lat, lon, alt, rel, int(s.vn * 100), int(s.ve * 100), int(-s.vz * 100),
            int(s.heading_deg * 100),
        ))  # fmt: skip
        self._send(mavlink.MAVLink_attitude_message(self._boot_ms(), 0.0, 0.0, math.radians(s.heading_deg), 0, 0, 0))

    def _send_gimbal_attitude(self) -> None:
        s = self.state
        q = _quaternion(0.0, s.gimbal_pitch, s.gimbal_yaw)
        self._send(mavlink.MAVLink_gimbal_device_attitude_status_message(
            self.system_id, AUTOPILOT_COMPONENT, self._boot_ms(), mavlink.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME,
            q, 0.0, 0.0, 0.0, 0, math.nan, math.nan, 0,
        ), GIMBAL_COMPONENT)  # fmt: skip

    def _statustext(self, text: str, severity: int = mavlink.MAV_SEVERITY_CRITICAL) -> None:
        self._send(mavlink.MAVLink_statustext_message(severity, text.encode()[:50]))

    # -- commands ----------------------------------------------------------------------------------
    def _handle(self, message: Any) -> None:
        kind = message.get_type()
        if kind in ("COMMAND_LONG", "COMMAND_INT"):
            if getattr(message, "target_system", self.system_id) not in (0, self.system_id):
                return
            result = self._command(message, kind == "COMMAND_INT")
            self.commands.append((message.command, result))
            self._send(mavlink.MAVLink_command_ack_message(
                message.command, result, 0, 0, message.get_srcSystem(), message.get_srcComponent()
            ))  # fmt: skip
        elif kind == "SET_POSITION_TARGET_GLOBAL_INT":
            self._position_target(message)
        elif kind == "SET_MODE":
            self._set_mode(message.custom_mode)
        elif kind.startswith("MISSION_"):
            self._mission(message)

    def _command(self, m: Any, as_int: bool) -> int:
        s, c = self.state, m.command
        accepted, failed = mavlink.MAV_RESULT_ACCEPTED, mavlink.MAV_RESULT_FAILED
        if c == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            if m.param1 >= 0.5:
                if s.armed:
                    return accepted
                if not self.has_position:
                    self._statustext("Arm: Need Position Estimate")
                    return failed
                if s.mode not in (Mode.GUIDED, Mode.LOITER, Mode.STABILIZE):
                    self._statustext("Arm: Mode not armable")
                    return failed
                s.armed = True
                return accepted
            if s.flying and m.param2 != 21196:  # 21196: forced disarm, as MAVLink defines it
                return failed
            s.armed = s.flying = False
            return accepted
        if c == mavlink.MAV_CMD_DO_SET_MODE:
            return accepted if self._set_mode(int(m.param2)) else failed
        if c == mavlink.MAV_CMD_NAV_TAKEOFF:
            if s.mode != Mode.GUIDED or not s.armed:
                return failed
            if s.flying:
                return failed
            s.flying = True
            s.target = (s.lat, s.lon, float(m.param7 if not as_int else m.z))
            return accepted
        if c == mavlink.MAV_CMD_DO_REPOSITION:
            if not as_int:
                return mavlink.MAV_RESULT_DENIED  # a position in floats is too coarse: ArduCopter wants COMMAND_INT
            if s.mode != Mode.GUIDED:
                if not int(m.param2) & mavlink.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE:
                    return mavlink.MAV_RESULT_DENIED
                if not self._set_mode(Mode.GUIDED):
                    return failed
            if not (s.armed and s.flying):
                return failed
            alt = m.z if m.z == m.z else s.rel_alt  # NaN altitude: keep the current one
            s.target = (m.x / 1e7, m.y / 1e7, float(alt))
            return accepted
        if c == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            return accepted if self._set_mode(Mode.RTL) else failed
        if c == mavlink.MAV_CMD_NAV_LAND:
            return accepted if self._set_mode(Mode.LAND) else failed
        if c == mavlink.MAV_CMD_DO_SET_ROI_LOCATION:
            lat, lon, alt = (m.x / 1e7, m.y / 1e7, m.z) if as_int else (m.param5, m.param6, m.param7)
            if lat == 0 and lon == 0:
                s.roi = None  # "no ROI", as MAVLink defines an all-zero location
            else:
                s.roi = (lat, lon, alt + s.home_alt_amsl)
            return accepted
        if c == mavlink.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW:
            pitch, yaw = m.param1, m.param2
            if not (-90.0 <= pitch <= 45.0) or not (-180.0 <= yaw <= 180.0):
                return mavlink.MAV_RESULT_DENIED
            s.roi, s.gimbal_target = None, (pitch, yaw)
            return accepted
        if c == mavlink.MAV_CMD_DO_MOUNT_CONTROL:
            s.roi, s.gimbal_target = None, (max(-90.0, min(45.0, m.param1)), m.param3)
            return accepted
        if c == mavlink.MAV_CMD_REQUEST_MESSAGE:
            return accepted if self._send_requested(int(m.param1)) else mavlink.MAV_RESULT_DENIED
        if c == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
            return accepted  # rates are fixed here; ArduCopter accepts and streams at the asked rate
        return mavlink.MAV_RESULT_UNSUPPORTED

    def _set_mode(self, mode: int) -> bool:
        s = self.state
        if mode not in Mode.NAMES:
            return False
        if mode == Mode.AUTO and not [i for i in s.mission if i.seq > 0]:
            self._statustext("Mode change to AUTO failed: no mission")
            return False
        if mode in (Mode.RTL, Mode.AUTO) and not self.has_position:
            return False
        if mode == Mode.AUTO:
            s.reached.clear()
            s.mission_current = max(1, s.mission_current)
            s.flying = s.flying or s.armed
        s.mode = mode
        if mode == Mode.GUIDED and s.flying:
            s.target = (s.lat, s.lon, s.rel_alt)  # GUIDED starts by holding position
        return True

    def _position_target(self, m: Any) -> None:
        s = self.state
        ignore_position = mavlink.POSITION_TARGET_TYPEMASK_X_IGNORE | mavlink.POSITION_TARGET_TYPEMASK_Y_IGNORE
        if s.mode != Mode.GUIDED or not s.flying or m.type_mask & ignore_position:
            return  # ignored silently outside GUIDED, as ArduCopter does
        alt = m.alt
        if m.coordinate_frame in (mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_INT):
            alt -= s.home_alt_amsl
        s.target = (m.lat_int / 1e7, m.lon_int / 1e7, float(alt))
        self._send(mavlink.MAVLink_position_target_global_int_message(
            self._boot_ms(), mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, m.type_mask, m.lat_int, m.lon_int, alt,
            0, 0, 0, 0, 0, 0, 0, 0,
        ))  # fmt: skip

    def _send_requested(self, message_id: int) -> bool:
        s, now = self.state, self._boot_ms()
        if message_id == mavlink.MAVLINK_MSG_ID_GIMBAL_MANAGER_INFORMATION:
            flags = mavlink.GIMBAL_MANAGER_CAP_FLAGS_HAS_PITCH_AXIS | mavlink.GIMBAL_MANAGER_CAP_FLAGS_HAS_YAW_AXIS
            flags |= mavlink.GIMBAL_MANAGER_CAP_FLAGS_CAN_POINT_LOCATION_GLOBAL
            rad = math.radians
            self._send(mavlink.MAVLink_gimbal_manager_information_message(
                now, flags, GIMBAL_COMPONENT, 0.0, 0.0, rad(-90), rad(45), rad(-180), rad(180)
            ))  # fmt: skip
        elif message_id == mavlink.MAVLINK_MSG_ID_CAMERA_INFORMATION:
            self._send(mavlink.MAVLink_camera_information_message(
                now, [0] * 32, [0] * 32, 0, math.nan, math.nan, math.nan, 1920, 1080, 0,
                mavlink.CAMERA_CAP_FLAGS_CAPTURE_VIDEO | mavlink.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM, 0, b"",
            ))  # fmt: skip
        elif message_id == mavlink.MAVLINK_MSG_ID_CAMERA_SETTINGS:
            self._send(mavlink.MAVLink_camera_settings_message(now, mavlink.CAMERA_MODE_VIDEO, 0.0, math.nan))
        elif message_id == mavlink.MAVLINK_MSG_ID_CAMERA_CAPTURE_STATUS:
            self._send(mavlink.MAVLink_camera_capture_status_message(now, 0, 0, 0.0, 0, math.nan, 0))
        elif message_id == mavlink.MAVLINK_MSG_ID_CAMERA_FOV_STATUS:
            self._send(self._fov_status(now))
        elif message_id == mavlink.MAVLINK_MSG_ID_HOME_POSITION:
            if not self.has_position:
                return False
            self._send(mavlink.MAVLink_home_position_message(
                int(s.home_lat * 1e7), int(s.home_lon * 1e7), int(s.home_alt_amsl * 1000), 0, 0, 0,
                [1, 0, 0, 0], 0, 0, 0,
            ))  # fmt: skip
        else:
            return False
        return True

    def _fov_status(self, now: int) -> Any:
        """Where the camera looks: the optical axis intersected with flat ground at home altitude."""
        s = self.state
        pitch = math.radians(s.gimbal_pitch)
        yaw = math.radians(s.heading_deg + s.gimbal_yaw)
        if pitch < -0.01:
            ground = s.rel_alt / math.tan(-pitch)
            lat_i, lon_i = moved(s.lat, s.lon, ground * math.cos(yaw), ground * math.sin(yaw))
            image = (int(lat_i * 1e7), int(lon_i * 1e7), int(s.home_alt_amsl * 1000))
        else:
            image = (2**31 - 1, 2**31 - 1, 2**31 - 1)  # INT32_MAX: the axis does not meet the ground
        return mavlink.MAVLink_camera_fov_status_message(
            now, int(s.lat * 1e7), int(s.lon * 1e7), int((s.home_alt_amsl + s.rel_alt) * 1000), *image,
            _quaternion(0.0, math.degrees(pitch), math.degrees(yaw)), *self.camera_fov,
        )  # fmt: skip

    # -- mission protocol --------------------------------------------------------------------------
    def _mission(self, m: Any) -> None:
        s, kind = self.state, m.get_type()
        src = (m.get_srcSystem(), m.get_srcComponent())
        if kind == "MISSION_COUNT":
            self._upload = {"count": m.count, "items": {}, "src": src}
            if m.count == 0:
                s.mission, self._upload = [], None
                self._send(mavlink.MAVLink_mission_ack_message(*src, mavlink.MAV_MISSION_ACCEPTED))
            else:
                self._send(mavlink.MAVLink_mission_request_int_message(*src, 0))
        elif kind in ("MISSION_ITEM_INT", "MISSION_ITEM") and self._upload is not None:
            up = self._upload
            if m.seq != len(up["items"]):
                self._send(mavlink.MAVLink_mission_ack_message(*src, mavlink.MAV_MISSION_INVALID_SEQUENCE))
                return
            scale = 1e7 if kind == "MISSION_ITEM_INT" else 1.0
            up["items"][m.seq] = MissionItem(
                m.seq, m.frame, m.command, (m.param1, m.param2, m.param3, m.param4), m.x / scale, m.y / scale, m.z
            )
            if len(up["items"]) < up["count"]:
                self._send(mavlink.MAVLink_mission_request_int_message(*src, len(up["items"])))
            else:
                s.mission = [up["items"][i] for i in range(up["count"])]
                s.mission_current, self._upload = 1, None
                s.reached.clear()
                self._send(mavlink.MAVLink_mission_ack_message(*src, mavlink.MAV_MISSION_ACCEPTED))
        elif kind == "MISSION_REQUEST_LIST":
            self._send(mavlink.MAVLink_mission_count_message(*src, len(s.mission)))
        elif kind in ("MISSION_REQUEST_INT", "MISSION_REQUEST"):
            if m.seq >= len(s.mission):
                self._send(mavlink.MAVLink_mission_ack_message(*src, mavlink.MAV_MISSION_INVALID_SEQUENCE))
                return
            i = s.mission[m.seq]
            self._send(mavlink.MAVLink_mission_item_int_message(
                *src, i.seq, i.frame, i.command, int(i.seq == s.mission_current), 1, *i.params,
                int(i.lat * 1e7), int(i.lon * 1e7), i.alt,
            ))  # fmt: skip
        elif kind == "MISSION_CLEAR_ALL":
            s.mission, s.mission_current = [], 0
            self._send(mavlink.MAVLink_mission_ack_message(*src, mavlink.MAV_MISSION_ACCEPTED))
        elif kind == "MISSION_SET_CURRENT" and 0 < m.seq < len(s.mission):
            s.mission_current = m.seq
            self._send(mavlink.MAVLink_mission_current_message(s.mission_current, len(s.mission)))
