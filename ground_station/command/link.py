"""The station's MAVLink link to one vehicle: GCS heartbeats out, the vehicle's state in, commands with
their acknowledgement.

One thread per link owns the connection: it (re)connects, sends the ground station's HEARTBEAT at 1 Hz
(an autopilot's GCS failsafe watches for it), and keeps the vehicle's state from what the vehicle itself
reports (HEARTBEAT, GLOBAL_POSITION_INT, HOME_POSITION, GIMBAL_DEVICE_ATTITUDE_STATUS, STATUSTEXT).
A command is sent once and waits for its COMMAND_ACK; a refusal, a timeout or a lost link is returned
as such and never retried: the pilot decides what to do next.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pymavlink import mavutil

log = logging.getLogger("ground_station.command")
if getattr(mavutil.mavlink, "WIRE_PROTOCOL_VERSION", "") != "2.0":  # GIMBAL_* exist only in MAVLink 2 modules
    os.environ["MAVLINK20"] = "1"
    mavutil.set_dialect(mavutil.current_dialect)
mavlink = mavutil.mavlink

RECENT_TEXT_S = 30.0  # a vehicle's STATUSTEXT is shown this long
GCS_SYSTEM_ID = 255
GCS_COMPONENT_ID = mavlink.MAV_COMP_ID_MISSIONPLANNER  # 190, as QGroundControl and Mission Planner
# accepted, temporarily rejected, denied, unsupported, failed, in progress, … as the dialect defines them
RESULT_NAMES = {
    value: entry.name.removeprefix("MAV_RESULT_").replace("_", " ").lower()
    for value, entry in mavlink.enums["MAV_RESULT"].items()
}


@dataclass(slots=True)
class CommandOutcome:
    """What became of one command: the vehicle's answer, or why there was none."""

    command: str
    result: str  # accepted | denied | failed | temporarily rejected | unsupported | timeout | link lost
    detail: str | None = None  # the vehicle's STATUSTEXT that came with a refusal, if any
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result in ("accepted", "in progress")


@dataclass
class VehicleState:
    """What the vehicle last reported about itself."""

    system_id: int
    autopilot: int | None = None
    mav_type: int | None = None
    mode: str | None = None
    armed: bool = False
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None  # above home
    heading_deg: float | None = None
    ground_speed_m_s: float = 0.0
    home: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
    gimbal_pitch_deg: float | None = None
    gimbal_yaw_deg: float | None = None
    last_heartbeat: float | None = None  # monotonic
    messages: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=20))  # (monotonic, STATUSTEXT)

    def as_dict(self, heartbeat_timeout_s: float) -> dict[str, Any]:
        position = None if self.lat is None else {"lat": self.lat, "lon": self.lon, "alt_m": self.alt_m}
        home = None if self.home is None else {"lat": self.home[0], "lon": self.home[1], "alt_amsl_m": self.home[2]}
        gimbal = None if self.gimbal_pitch_deg is None else {"pitch_deg": self.gimbal_pitch_deg,
                                                             "yaw_deg": self.gimbal_yaw_deg}  # fmt: skip
        return {
            "system_id": self.system_id, "link": self.link_state(heartbeat_timeout_s), "mode": self.mode,
            "armed": self.armed, "position": position, "heading_deg": self.heading_deg,
            "ground_speed_m_s": round(self.ground_speed_m_s, 2), "home": home, "gimbal": gimbal,
            "messages": [text for at, text in self.messages if time.monotonic() - at < RECENT_TEXT_S][-5:],
        }  # fmt: skip

    def link_state(self, heartbeat_timeout_s: float) -> str:
        if self.last_heartbeat is None:
            return "connecting"
        return "ok" if time.monotonic() - self.last_heartbeat <= heartbeat_timeout_s else "lost"


def _quaternion_pitch_yaw(q: list[float]) -> tuple[float, float]:
    w, x, y, z = q
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return math.degrees(pitch), math.degrees(yaw)


class MavlinkConnection:
    """One MAVLink link (URL) shared by every vehicle on it, told apart by system id (a radio or MAVProxy may carry
    several). One thread owns it: (re)connects, sends the station's HEARTBEAT at 1 Hz, hands each message to the
    vehicle whose system id sent it, and lets each vehicle ask for what it misses (its home)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.vehicles: dict[int, VehicleLink] = {}
        self._conn: Any = None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"mavlink {self.url}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
            self._thread = None
        self._close()

    def send(self, write: Any) -> None:
        conn = self._conn
        if conn is None:
            raise ConnectionError("not connected")
        with self._send_lock:
            write(conn.mav)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError, AttributeError):  # pymavlink's TCP close after a failed reconnect
                conn.close()

    def _run(self) -> None:
        next_heartbeat = 0.0
        while not self._stop.is_set():
            if self._conn is None and not self._connect():
                self._stop.wait(1.0)
                continue
            now = time.monotonic()
            try:
                if now >= next_heartbeat:
                    next_heartbeat = now + 1.0
                    self.send(lambda mav: mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID,
                                                             0, 0, mavlink.MAV_STATE_ACTIVE))  # fmt: skip
                    for vehicle in list(self.vehicles.values()):
                        vehicle.tick()
                message = self._conn.recv_match(blocking=True, timeout=0.2)
            except Exception as error:  # whatever the link raised, the thread reconnects, never dies
                self.error = f"MAVLink link {self.url}: {error}"
                log.warning("%s; reconnecting", self.error)
                self._close()
                continue
            if message is None:
                continue
            vehicle = self.vehicles.get(message.get_srcSystem())
            if vehicle is not None:
                try:
                    vehicle.take(message)
                except (ValueError, TypeError, AttributeError) as error:  # a malformed message: skip it
                    log.debug("skipped %s: %s", message.get_type(), error)

    def _connect(self) -> bool:
        try:
            self._conn = mavutil.mavlink_connection(
                self.url, source_system=GCS_SYSTEM_ID, source_component=GCS_COMPONENT_ID, autoreconnect=True
            )
        except (OSError, ConnectionError) as error:
            self.error = f"cannot open MAVLink link {self.url}: {error}"
            return False
        self.error = None
        return True


class VehicleLink:
    """The vehicle with `system_id` on a MAVLink connection: its state, and commands with their acknowledgement."""

    def __init__(
        self,
        url: str,
        system_id: int = 1,
        heartbeat_timeout_s: float = 3.0,
        connection: MavlinkConnection | None = None,
    ) -> None:
        self.url = url
        self.state = VehicleState(system_id)
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.connection = connection or MavlinkConnection(url)
        self.connection.vehicles[system_id] = self
        self._changed = threading.Condition()
        self._acks: dict[int, tuple[int, float]] = {}  # command → (result, monotonic time)
        self._home_asked = 0.0

    @property
    def error(self) -> str | None:
        return self.connection.error

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.connection.start()

    def stop(self) -> None:
        self.connection.stop()

    def tick(self) -> None:
        """Once a second on the connection's thread: ask for what the vehicle has not said yet (its home)."""
        now = time.monotonic()
        if self.state.home is None and self.state.lat is not None and now - self._home_asked > 2.0:
            self._home_asked = now
            self._request_message(mavlink.MAVLINK_MSG_ID_HOME_POSITION)

    # -- state from the vehicle -------------------------------------------------------------------
    def take(self, m: Any) -> None:
        """A message from this vehicle (the connection dispatches by system id)."""
        kind, s = m.get_type(), self.state
        with self._changed:
            if kind == "HEARTBEAT" and m.get_srcComponent() == mavlink.MAV_COMP_ID_AUTOPILOT1:
                s.last_heartbeat = time.monotonic()
                s.autopilot, s.mav_type = m.autopilot, m.type
                s.mode = mavutil.mode_string_v10(m)
                s.armed = bool(m.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
            elif kind == "GLOBAL_POSITION_INT":
                if m.lat or m.lon:  # 0/0 until the autopilot has a position estimate
                    s.lat, s.lon, s.alt_m = m.lat / 1e7, m.lon / 1e7, m.relative_alt / 1000
                    s.ground_speed_m_s = math.hypot(m.vx, m.vy) / 100
                    s.heading_deg = None if m.hdg == 65535 else m.hdg / 100
            elif kind == "HOME_POSITION":
                s.home = (m.latitude / 1e7, m.longitude / 1e7, m.altitude / 1000)
            elif kind == "GIMBAL_DEVICE_ATTITUDE_STATUS":
                s.gimbal_pitch_deg, s.gimbal_yaw_deg = (round(v, 1) for v in _quaternion_pitch_yaw(list(m.q)))
            elif kind == "STATUSTEXT":
                s.messages.append((time.monotonic(), m.text))
            elif kind == "COMMAND_ACK":
                self._acks[m.command] = (m.result, time.monotonic())
            self._changed.notify_all()

    # -- commands ------------------------------------------------------------------------------------
    def _request_message(self, message_id: int) -> None:
        self.connection.send(lambda mav: mav.command_long_send(self.state.system_id, mavlink.MAV_COMP_ID_AUTOPILOT1,
                                                     mavlink.MAV_CMD_REQUEST_MESSAGE, 0, message_id,
                                                     0, 0, 0, 0, 0, 0))  # fmt: skip

    def command(
        self,
        command: int,
        params: tuple[float, ...] = (),
        *,
        as_int: bool = False,
        x: int = 0,
        y: int = 0,
        z: float = 0.0,
        frame: int = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
        timeout: float = 3.0,
    ) -> CommandOutcome:
        """Send once (COMMAND_LONG, or COMMAND_INT for positions) and wait for its COMMAND_ACK."""
        name = mavlink.enums["MAV_CMD"][command].name if command in mavlink.enums["MAV_CMD"] else str(command)
        started = time.monotonic()
        if self.state.link_state(self.heartbeat_timeout_s) != "ok":
            return CommandOutcome(name, "link lost", self.error)
        texts_before = len(self.state.messages)
        target = (self.state.system_id, mavlink.MAV_COMP_ID_AUTOPILOT1)
        try:
            if as_int:
                p = (*params, 0.0, 0.0, 0.0, 0.0)[:4]
                self.connection.send(lambda mav: mav.command_int_send(*target, frame, command, 0, 0, *p, x, y, z))
            else:
                p = (*params, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)[:7]
                self.connection.send(lambda mav: mav.command_long_send(*target, command, 0, *p))
        except (OSError, ConnectionError) as error:
            return CommandOutcome(name, "link lost", str(error))
        deadline = started + timeout
        with self._changed:
            while True:
                ack = self._acks.get(command)
                if ack is not None and ack[1] >= started:
                    result = RESULT_NAMES.get(ack[0], f"result {ack[0]}")
                    texts = [t for _, t in list(self.state.messages)[texts_before:]] if result != "accepted" else []
                    return CommandOutcome(name, result, "; ".join(texts) or None, time.monotonic() - started)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    lost = self.state.link_state(self.heartbeat_timeout_s) != "ok"
                    return CommandOutcome(name, "link lost" if lost else "timeout", None, time.monotonic() - started)
                self._changed.wait(remaining)

    def mode_number(self, name: str) -> int | None:
        """The custom mode number of `name` for this autopilot (ArduPilot's tables from pymavlink)."""
        if self.state.autopilot != mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA or self.state.mav_type is None:
            return None
        mapping = mavutil.mode_mapping_byname(self.state.mav_type) or {}
        return mapping.get(name)

    def set_mode(self, name: str, timeout: float = 3.0) -> CommandOutcome:
        number = self.mode_number(name)
        if number is None:
            return CommandOutcome("MAV_CMD_DO_SET_MODE", "unsupported", f"no mode {name} known for this autopilot")
        return self.command(
            mavlink.MAV_CMD_DO_SET_MODE, (mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, number), timeout=timeout
        )
