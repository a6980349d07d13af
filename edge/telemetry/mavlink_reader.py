"""MAVLink telemetry → per-vehicle `VehicleState`, with a bounded time-indexed history so a video
frame can be matched to the telemetry of its own capture time.

Reads a live link (UDP, TCP, serial) on a background thread or replays a log (.tlog with its own
timestamps, or a raw byte stream). Several vehicles on one link are kept apart by system id; ground
stations and non-autopilot components never move a vehicle, but a vehicle's gimbal and camera
components do feed its gimbal/camera fields. Garbage on the link is counted, never raised.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymavlink import mavutil

from edge.telemetry.vehicle import History, Kind, fov_deg, quaternion_to_euler_deg, wrap180, wrap360
from smarteye.wire.telemetry import VehicleState

log = logging.getLogger(__name__)

_NET_SCHEMES = ("udpin:", "udpout:", "udp:", "udpbcast:", "tcp:", "tcpin:")
_MAX_TYPES = 256  # message-type counter keys; unknown ids all count as "UNKNOWN"
_MAX_PACED_GAP_S = 10.0  # realtime replay skips longer silences in a log
_SNAPSHOT_EVERY_S = 0.5  # slow fields (mode, battery, …) are remembered at this granularity
_UINT16_MAX = 65535

# Heartbeat types that are never the vehicle itself, even with an autopilot field set.
_NOT_VEHICLE_TYPES = frozenset(
    getattr(mavutil.mavlink, name)
    for name in (
        "MAV_TYPE_GCS",
        "MAV_TYPE_GIMBAL",
        "MAV_TYPE_CAMERA",
        "MAV_TYPE_ADSB",
        "MAV_TYPE_ONBOARD_CONTROLLER",
        "MAV_TYPE_ANTENNA_TRACKER",
        "MAV_TYPE_SERVO",
        "MAV_TYPE_ODID",
        "MAV_TYPE_BATTERY",
    )
    if hasattr(mavutil.mavlink, name)
)
_NAV_TYPES = frozenset({"GLOBAL_POSITION_INT", "ATTITUDE", "GPS_RAW_INT", "SYS_STATUS", "VFR_HUD"})
_PAYLOAD_TYPES = frozenset(
    {
        "GIMBAL_DEVICE_ATTITUDE_STATUS",
        "MOUNT_ORIENTATION",
        "MOUNT_STATUS",
        "CAMERA_INFORMATION",
        "VIDEO_STREAM_INFORMATION",
        "VIDEO_STREAM_STATUS",
    }
)
# Gimbal sources, best first: a worse one is used only while no better one is fresh.
_GIMBAL_RANK = {"GIMBAL_DEVICE_ATTITUDE_STATUS": 3, "MOUNT_ORIENTATION": 2, "MOUNT_STATUS": 1}

_POS_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("lat", "lin"),
    ("lon", "a180"),
    ("alt_amsl_m", "lin"),
    ("alt_rel_m", "lin"),
    ("heading_deg", "a360"),
    ("groundspeed_mps", "lin"),
    ("climb_mps", "lin"),
)
_ATT_FIELDS: tuple[tuple[str, Kind], ...] = (("roll_deg", "a180"), ("pitch_deg", "a180"), ("yaw_deg", "a180"))
_GIMBAL_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("gimbal_roll_deg", "a180"),
    ("gimbal_pitch_deg", "a180"),
    ("gimbal_yaw_deg", "a180"),
    ("gimbal_yaw_frame", "hold"),
)


def ensure_mavlink2() -> None:
    """Switch pymavlink to its MAVLink 2 dialect (process-wide, as pymavlink itself does on the first
    MAVLink 2 frame): the MAVLink 1 modules lack messages with ids > 255 such as GIMBAL_DEVICE_*."""
    if getattr(mavutil.mavlink, "WIRE_PROTOCOL_VERSION", "") != "2.0":
        os.environ["MAVLINK20"] = "1"
        mavutil.set_dialect(mavutil.current_dialect)


def _enum_name(enum: str, value: int, prefix: str) -> str:
    entry = mavutil.mavlink.enums.get(enum, {}).get(value)
    return entry.name.removeprefix(prefix) if entry is not None else str(value)


@dataclass
class _Vehicle:
    """Mutable per-system record; VehicleState objects are built from it on demand."""

    fields: dict[str, Any]
    pos: History
    att: History
    gimbal: History
    snapshots: History
    is_vehicle: bool = False  # an autopilot heartbeat or autopilot navigation data was seen
    autopilot_comp: int | None = None
    gimbal_rank: int = 0
    gimbal_rank_t: float = -math.inf
    camera_info: bool = False  # CAMERA_INFORMATION gave a FOV: video-stream FOVs no longer apply
    last_snapshot_t: float = -math.inf
    extra: dict[str, Any] = field(default_factory=dict)


class MavlinkReader:
    """Turns one MAVLink link or log into per-vehicle state and time-indexed history.

    url: `udpin:0.0.0.0:14550`, `udpout:host:port`, `tcp:host:port`, `tcpin:host:port`, a serial
    device (`/dev/ttyUSB0` or `/dev/ttyUSB0,57600`), a `.tlog` file, or a raw byte log (`.raw`, or
    any file with raw=True). Live links: start()/stop(). Files: replay() (or start() for a paced
    background replay). A udpout link sends a 1 Hz heartbeat (heartbeat=None means "only for
    udpout"), because a UDP server only streams to peers it has heard from.
    """

    def __init__(
        self,
        url: str,
        stale_after_s: float = 2.0,
        history_s: float = 60.0,
        *,
        raw: bool = False,
        max_samples: int = 10_000,
        heartbeat: bool | None = None,
    ) -> None:
        ensure_mavlink2()
        self.url = url
        self.stale_after_s = float(stale_after_s)
        self.history_s = float(history_s)
        self.max_samples = int(max_samples)
        self._kind, self._device, self._baud = self._parse_url(url, raw)
        self._heartbeat = heartbeat if heartbeat is not None else url.startswith("udpout:")
        self._lock = threading.Lock()
        self._vehicles: dict[int, _Vehicle] = {}
        self._gcs_ids: set[int] = set()
        self._messages: dict[str, int] = {}
        self._bad_data = 0
        self._errors = 0
        self._last_error: str | None = None
        self._log_now: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- opening

    @staticmethod
    def _parse_url(url: str, raw: bool) -> tuple[str, str, int]:
        """(kind, device, baud) with kind one of net, tlog, raw, serial."""
        if not url:
            raise ValueError("empty MAVLink url")
        if url.startswith(_NET_SCHEMES):
            return "net", url, 0
        path, _, baud = url.partition(",")
        lower = path.lower()
        if raw or lower.endswith(".raw"):
            return "raw", path, 0
        if lower.endswith((".tlog", ".mavlink")) or Path(path).is_file():
            return "tlog", path, 0
        try:
            return "serial", path, int(baud) if baud else 115200
        except ValueError:
            raise ValueError(f"bad baud rate in MAVLink url {url!r}") from None

    @property
    def is_file(self) -> bool:
        return self._kind in ("tlog", "raw")

    def _open(self) -> Any:
        """A pymavlink connection with robust parsing (bad bytes become BAD_DATA, not exceptions)."""
        if self._kind == "raw":
            # mavlogfile directly: mavlink_connection() would take a `.bin` name for a DataFlash log.
            conn = mavutil.mavlogfile(self._device, notimestamps=True, robust_parsing=True)
        elif self._kind == "tlog":
            if not Path(self._device).is_file():
                raise FileNotFoundError(f"MAVLink log {self._device!r} not found")
            conn = mavutil.mavmmaplog(self._device)
        elif self._kind == "serial":
            conn = mavutil.mavlink_connection(self._device, baud=self._baud, autoreconnect=True, robust_parsing=True)
        else:
            conn = mavutil.mavlink_connection(
                self._device,
                source_system=255,
                source_component=mavutil.mavlink.MAV_COMP_ID_ONBOARD_COMPUTER,
                robust_parsing=True,
                autoreconnect=True,
                retries=1,  # our loop retries every second and can still be stopped in between
            )
        conn.robust_parsing = True
        conn.mav.robust_parsing = True
        return conn

    # ------------------------------------------------------------- live links

    def start(self) -> None:
        """Read on a background thread: a live link, or a file replayed at its own pace."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        target = self._replay_thread if self.is_file else self._live_thread
        self._thread = threading.Thread(target=target, name=f"mavlink:{self.url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reading thread (within ~0.5 s) and close the link."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> MavlinkReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _live_thread(self) -> None:
        """Never dies on link trouble: errors are counted and the link reopened after a pause."""
        conn = None
        next_heartbeat = 0.0
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._open()
                msg = conn.recv_match(blocking=True, timeout=0.5)
                if msg is not None:
                    self.process(msg)
                if self._heartbeat and time.monotonic() >= next_heartbeat:
                    next_heartbeat = time.monotonic() + 1.0
                    conn.mav.heartbeat_send(
                        mavutil.mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavutil.mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0
                    )
            except Exception as exc:
                self._record_error(f"link {self.url}", exc)
                if conn is not None:
                    self._close(conn)
                    conn = None
                self._stop.wait(1.0)
        if conn is not None:
            self._close(conn)

    @staticmethod
    def _close(conn: Any) -> None:
        try:
            conn.close()
        except Exception:  # closing a broken link must not mask the original error
            log.debug("closing MAVLink connection failed", exc_info=True)

    # ----------------------------------------------------------------- replay

    def _replay_thread(self) -> None:
        try:
            self.replay(realtime=True)
        except Exception as exc:
            self._record_error(f"replay {self.url}", exc)

    def iter_replay(self, realtime: bool = False) -> Iterator[Any]:
        """Process every message of the file, yielding each after it updated the state, so a caller
        can step telemetry and video together. realtime=True paces by the log's timestamps."""
        if not self.is_file:
            raise ValueError(f"replay() needs a log file, not the live link {self.url!r}")
        if threading.current_thread() is not self._thread:
            self._stop.clear()  # a direct call after an earlier stop() must still read the file
        conn = self._open()
        wall0 = log0 = prev_t = 0.0
        log0_set = False
        try:
            failures = 0
            while not self._stop.is_set():
                try:
                    msg = conn.recv_match()
                except Exception as exc:  # robust parsing should prevent this; give up only if it persists
                    self._record_error(f"reading {self._device}", exc)
                    failures += 1
                    if failures >= 100:
                        break
                    continue
                failures = 0
                if msg is None:
                    break
                self.process(msg)
                if realtime and msg.get_type() != "BAD_DATA":
                    t = getattr(msg, "_timestamp", None)
                    if t is not None:
                        # Re-anchor on a clock jump back or a gap over _MAX_PACED_GAP_S (e.g. the boot-time
                        # clock of a raw log starting at 0): time-matching uses log time, not wall time.
                        if not log0_set or not -1.0 <= t - prev_t <= _MAX_PACED_GAP_S:
                            wall0, log0, log0_set = time.monotonic(), t, True
                        prev_t = t
                        delay = (t - log0) - (time.monotonic() - wall0)
                        if delay > 0.002 and self._stop.wait(delay):
                            break
                yield msg
        finally:
            self._close(conn)

    def replay(self, realtime: bool = False) -> int:
        """Process the whole file; returns the number of messages read (BAD_DATA included)."""
        return sum(1 for _ in self.iter_replay(realtime))

    # ------------------------------------------------------------- processing

    def process(self, msg: Any) -> None:
        """Fold one pymavlink message into the state; usable with a connection owned elsewhere."""
        mtype = msg.get_type()
        with self._lock:
            key = "UNKNOWN" if mtype.startswith("UNKNOWN_") else mtype
            if key in self._messages or len(self._messages) < _MAX_TYPES:
                self._messages[key] = self._messages.get(key, 0) + 1
            else:
                self._messages["OTHER"] = self._messages.get("OTHER", 0) + 1
            if mtype == "BAD_DATA":
                self._bad_data += 1
                return
            try:
                self._dispatch(msg, mtype)
            except Exception as exc:
                self._record_error_locked(f"{mtype} from {msg.get_srcSystem()}/{msg.get_srcComponent()}", exc)

    def _dispatch(self, msg: Any, mtype: str) -> None:
        if mtype != "HEARTBEAT" and mtype not in _NAV_TYPES and mtype not in _PAYLOAD_TYPES:
            return
        sid, cid = msg.get_srcSystem(), msg.get_srcComponent()
        if sid == 0:
            return
        t = getattr(msg, "_timestamp", None)
        if t is None or not math.isfinite(t):
            t = time.time()
        if self.is_file:
            self._log_now = t
        vehicle = self._vehicles.get(sid)
        has_autopilot = vehicle is not None and vehicle.autopilot_comp is not None
        if mtype == "HEARTBEAT":
            if msg.type == mavutil.mavlink.MAV_TYPE_GCS:
                if not has_autopilot:
                    self._gcs_ids.add(sid)
                return
            if msg.autopilot == mavutil.mavlink.MAV_AUTOPILOT_INVALID or msg.type in _NOT_VEHICLE_TYPES:
                return  # camera, gimbal, companion computer…: not the vehicle's own state
            if has_autopilot and vehicle.autopilot_comp != cid:  # type: ignore[union-attr]
                return
            vehicle = self._vehicle(sid)
            vehicle.autopilot_comp = cid
            vehicle.is_vehicle = True
            self._gcs_ids.discard(sid)
            self._on_heartbeat(vehicle, msg, t)
        elif mtype in _NAV_TYPES:
            expected = vehicle.autopilot_comp if has_autopilot else mavutil.mavlink.MAV_COMP_ID_AUTOPILOT1
            if cid != expected or (not has_autopilot and sid in self._gcs_ids):
                return
            vehicle = self._vehicle(sid)
            vehicle.is_vehicle = True
            getattr(self, "_on_" + mtype.lower())(vehicle, msg, t)
        else:
            if sid in self._gcs_ids and not has_autopilot:
                return
            vehicle = self._vehicle(sid)
            getattr(self, "_on_" + mtype.lower())(vehicle, msg, t)
        fields = vehicle.fields
        last = fields["time"]
        if last is None or t > last or last - t > 1.0:  # monotonic, except a clock reset (new log, reboot)
            fields["time"] = t
        if t - vehicle.last_snapshot_t >= _SNAPSHOT_EVERY_S or t < vehicle.last_snapshot_t:
            vehicle.last_snapshot_t = t
            vehicle.snapshots.add(t, (dict(fields),))

    def _vehicle(self, sid: int) -> _Vehicle:
        vehicle = self._vehicles.get(sid)
        if vehicle is None:
            age, n = self.history_s, self.max_samples
            vehicle = _Vehicle(
                fields={name: None for name in VehicleState.model_fields} | {"system_id": sid, "link_ok": False},
                pos=History(_POS_FIELDS, age, n),
                att=History(_ATT_FIELDS, age, n),
                gimbal=History(_GIMBAL_FIELDS, age, n),
                snapshots=History((("fields", "hold"),), age, n),
            )
            self._vehicles[sid] = vehicle
        return vehicle

    # One handler per message type: units converted here, "unknown" sentinels become None.

    def _on_heartbeat(self, v: _Vehicle, msg: Any, t: float) -> None:
        f = v.fields
        f["flight_mode"] = mavutil.mode_string_v10(msg)
        f["armed"] = bool(msg.base_mode & mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        f["vehicle_type"] = _enum_name("MAV_TYPE", msg.type, "MAV_TYPE_")
        f["autopilot"] = _enum_name("MAV_AUTOPILOT", msg.autopilot, "MAV_AUTOPILOT_")
        f["last_heartbeat"] = t

    def _on_global_position_int(self, v: _Vehicle, msg: Any, t: float) -> None:
        f = v.fields
        has_fix = msg.lat != 0 or msg.lon != 0  # ArduPilot sends 0/0 while it has no position
        f["lat"] = msg.lat * 1e-7 if has_fix else None
        f["lon"] = msg.lon * 1e-7 if has_fix else None
        f["alt_amsl_m"] = msg.alt * 1e-3 if has_fix else None
        f["alt_rel_m"] = msg.relative_alt * 1e-3
        f["heading_deg"] = wrap360(msg.hdg * 0.01) if msg.hdg != _UINT16_MAX else f["heading_deg"]
        f["groundspeed_mps"] = math.hypot(msg.vx, msg.vy) * 0.01
        f["climb_mps"] = -msg.vz * 0.01
        v.extra["gpi"] = True
        v.pos.add(t, tuple(f[name] for name, _ in _POS_FIELDS))

    def _on_attitude(self, v: _Vehicle, msg: Any, t: float) -> None:
        f = v.fields
        f["roll_deg"] = wrap180(math.degrees(msg.roll))
        f["pitch_deg"] = wrap180(math.degrees(msg.pitch))
        f["yaw_deg"] = wrap180(math.degrees(msg.yaw))
        v.att.add(t, (f["roll_deg"], f["pitch_deg"], f["yaw_deg"]))

    def _on_vfr_hud(self, v: _Vehicle, msg: Any, t: float) -> None:
        if v.extra.get("gpi"):
            return  # GLOBAL_POSITION_INT's velocities are the interpolated ones: keep one source
        v.fields["groundspeed_mps"] = float(msg.groundspeed)
        v.fields["climb_mps"] = float(msg.climb)
        v.fields["heading_deg"] = wrap360(float(msg.heading))

    def _on_gps_raw_int(self, v: _Vehicle, msg: Any, t: float) -> None:
        f = v.fields
        f["gps_fix_type"] = int(msg.fix_type)
        f["satellites"] = None if msg.satellites_visible == 255 else int(msg.satellites_visible)
        h_acc, v_acc = getattr(msg, "h_acc", 0), getattr(msg, "v_acc", 0)  # MAVLink 2 extensions; 0 = unknown
        f["h_acc_m"] = h_acc * 1e-3 if h_acc else None
        f["v_acc_m"] = v_acc * 1e-3 if v_acc else None

    def _on_sys_status(self, v: _Vehicle, msg: Any, t: float) -> None:
        f = v.fields
        f["battery_voltage_v"] = msg.voltage_battery * 1e-3 if msg.voltage_battery not in (0, _UINT16_MAX) else None
        f["battery_remaining_pct"] = float(msg.battery_remaining) if msg.battery_remaining >= 0 else None

    def _set_gimbal(self, v: _Vehicle, source: str, t: float, rpy: tuple[float, float, float], frame: str) -> None:
        rank = _GIMBAL_RANK[source]
        if rank < v.gimbal_rank and t - v.gimbal_rank_t <= self.stale_after_s:
            return
        v.gimbal_rank, v.gimbal_rank_t = rank, t
        values = (wrap180(rpy[0]), wrap180(rpy[1]), wrap180(rpy[2]), frame)
        v.fields.update(zip((name for name, _ in _GIMBAL_FIELDS), values, strict=True))
        v.fields["gimbal_source"] = source
        v.gimbal.add(t, values)

    def _on_gimbal_device_attitude_status(self, v: _Vehicle, msg: Any, t: float) -> None:
        if not all(math.isfinite(c) for c in msg.q):
            return  # NaN quaternion: the gimbal does not know its attitude
        flags = msg.flags
        ml = mavutil.mavlink
        if flags & ml.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME:
            frame = "earth"
        elif flags & ml.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME:
            frame = "vehicle"
        else:  # older gimbals: yaw lock means the yaw is relative to north
            frame = "earth" if flags & ml.GIMBAL_DEVICE_FLAGS_YAW_LOCK else "vehicle"
        self._set_gimbal(v, "GIMBAL_DEVICE_ATTITUDE_STATUS", t, quaternion_to_euler_deg(msg.q), frame)

    def _on_mount_orientation(self, v: _Vehicle, msg: Any, t: float) -> None:
        self._set_gimbal(v, "MOUNT_ORIENTATION", t, (msg.roll, msg.pitch, msg.yaw), "vehicle")

    def _on_mount_status(self, v: _Vehicle, msg: Any, t: float) -> None:
        # pointing_a = pitch, pointing_b = roll, pointing_c = yaw, all centidegrees.
        rpy = (msg.pointing_b * 0.01, msg.pointing_a * 0.01, msg.pointing_c * 0.01)
        self._set_gimbal(v, "MOUNT_STATUS", t, rpy, "vehicle")

    def _on_camera_information(self, v: _Vehicle, msg: Any, t: float) -> None:
        f = v.fields
        hfov, vfov = fov_deg(msg.sensor_size_h, msg.focal_length), fov_deg(msg.sensor_size_v, msg.focal_length)
        if hfov is not None:
            f["camera_hfov_deg"], f["camera_vfov_deg"] = hfov, vfov
            v.camera_info = True
        if msg.resolution_h > 0 and msg.resolution_v > 0:
            f["camera_resolution_h"], f["camera_resolution_v"] = int(msg.resolution_h), int(msg.resolution_v)

    def _on_video_stream_information(self, v: _Vehicle, msg: Any, t: float) -> None:
        if v.camera_info:
            return
        f = v.fields
        if 0 < msg.hfov < 360:
            f["camera_hfov_deg"] = float(msg.hfov)
        if msg.resolution_h > 0 and msg.resolution_v > 0:
            f["camera_resolution_h"], f["camera_resolution_v"] = int(msg.resolution_h), int(msg.resolution_v)

    _on_video_stream_status = _on_video_stream_information

    # --------------------------------------------------------------- queries

    def now(self) -> float:
        """The reader's clock: wall time for live links, the latest log timestamp during/after a replay."""
        if self.is_file and self._log_now is not None:
            return self._log_now
        return time.time()

    def vehicles(self) -> list[int]:
        """System ids of the vehicles seen, in order of appearance (GCS and bare components excluded)."""
        with self._lock:
            return [sid for sid, v in self._vehicles.items() if v.is_vehicle]

    def _pick(self, system_id: int | None) -> _Vehicle | None:
        if system_id is None:
            return next((v for v in self._vehicles.values() if v.is_vehicle), None)
        return self._vehicles.get(system_id)

    def state(self, system_id: int | None = None) -> VehicleState | None:
        """Latest state of a vehicle (None: the first one seen), link_ok judged against now()."""
        now = self.now()
        with self._lock:
            vehicle = self._pick(system_id)
            if vehicle is None:
                return None
            fields = dict(vehicle.fields)
        hb = fields["last_heartbeat"]
        fields["link_ok"] = hb is not None and now - hb <= self.stale_after_s
        return VehicleState(**fields)

    def state_at(self, system_id: int | None, t: float) -> VehicleState | None:
        """State at time t: position/altitude/attitude/gimbal interpolated between the samples around t,
        slower fields (mode, battery, …) as they were at t (±0.5 s). None when t lies more than
        stale_after_s outside the history; a stream with no sample near t gives None for its fields."""
        gap = self.stale_after_s
        with self._lock:
            vehicle = self._pick(system_id)
            if vehicle is None:
                return None
            spans = [h.span() for h in (vehicle.pos, vehicle.att, vehicle.gimbal, vehicle.snapshots)]
            spans = [s for s in spans if s is not None]
            if not spans or t < min(s[0] for s in spans) - gap or t > max(s[1] for s in spans) + gap:
                return None
            snapshot = vehicle.snapshots.at(t, math.inf)
            fields = dict(snapshot["fields"]) if snapshot else dict(vehicle.fields)  # type: ignore[call-overload]
            for history in (vehicle.pos, vehicle.att, vehicle.gimbal):
                if not len(history):
                    continue
                values = history.at(t, gap)
                fields.update(values if values is not None else dict.fromkeys(history.names))
        fields["time"] = t
        hb = fields["last_heartbeat"]
        fields["link_ok"] = hb is not None and -gap <= t - hb <= gap
        return VehicleState(**fields)

    def is_stale(self, system_id: int | None, now: float | None = None) -> bool:
        """True when the vehicle is unknown or sent nothing for more than stale_after_s (now: now())."""
        now = self.now() if now is None else now
        with self._lock:
            vehicle = self._pick(system_id)
            last = vehicle.fields["time"] if vehicle is not None else None
        return last is None or now - last > self.stale_after_s

    # -------------------------------------------------------------- counters

    @property
    def messages(self) -> dict[str, int]:
        """Messages by type (BAD_DATA included, unknown ids as UNKNOWN); a copy."""
        with self._lock:
            return dict(self._messages)

    @property
    def bad_data(self) -> int:
        """BAD_DATA frames (bad CRC, garbage, truncation) plus frames pymavlink raised a parse error on."""
        return self._bad_data

    @property
    def errors(self) -> int:
        """Link/parse/handling errors survived so far; see last_error."""
        return self._errors

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def _record_error(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self._record_error_locked(where, exc)

    def _record_error_locked(self, where: str, exc: BaseException) -> None:
        self._errors += 1
        if isinstance(exc, mavutil.mavlink.MAVError):  # a frame pymavlink could not parse
            self._bad_data += 1
        line = f"{where}: {type(exc).__name__}: {exc}".replace("\n", " ")
        if line != self._last_error:
            log.warning("MAVLink %s", line)
        self._last_error = line
