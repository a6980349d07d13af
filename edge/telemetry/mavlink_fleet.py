"""The vehicles heard on one MAVLink link: decoded messages folded into per-vehicle state and history.

Several vehicles on one link are kept apart by system id. Ground stations and non-autopilot components
never move a vehicle, but a vehicle's gimbal and camera components do feed its gimbal/camera fields.
Where two message types state the same thing, the better source wins (below). Fast streams (position,
attitude, gimbal) each keep a time-indexed history so a video frame gets the telemetry of its own instant.
Thread-safe: the link's thread folds while the frame path queries.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from pymavlink import mavutil

from edge.telemetry.mavlink_decoders import DECODERS, Fields
from edge.telemetry.vehicle import History, Kind
from smarteye.wire.telemetry import VehicleState

SNAPSHOT_EVERY_S = 0.5  # slow fields (mode, battery, …) are remembered at this granularity

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
# Navigation data only the vehicle's autopilot speaks for; the other decoded types (gimbal, camera) may
# come from any component of the vehicle.
_AUTOPILOT_TYPES = frozenset({"GLOBAL_POSITION_INT", "ATTITUDE", "GPS_RAW_INT", "SYS_STATUS", "VFR_HUD"})

# Gimbal sources, best first: a worse one is used only while no better one is fresh.
_GIMBAL_RANK = {"GIMBAL_DEVICE_ATTITUDE_STATUS": 3, "MOUNT_ORIENTATION": 2, "MOUNT_STATUS": 1}
# A message type ignored for good once a better one has given the field it is preferred for.
_OUTRANKED_BY: dict[str, tuple[str, str]] = {
    "VFR_HUD": ("GLOBAL_POSITION_INT", "groundspeed_mps"),  # GPI's velocities are the interpolated ones
    "VIDEO_STREAM_INFORMATION": ("CAMERA_INFORMATION", "camera_hfov_deg"),  # the camera's own optics
    "VIDEO_STREAM_STATUS": ("CAMERA_INFORMATION", "camera_hfov_deg"),
}
_OUTRANKING = {better: key for better, key in _OUTRANKED_BY.values()}

# The fast streams, each its own history so one is never interpolated against a value held from another.
_STREAM_FIELDS: dict[str, tuple[tuple[str, Kind], ...]] = {
    "position": (
        ("lat", "lin"),
        ("lon", "a180"),
        ("alt_amsl_m", "lin"),
        ("alt_rel_m", "lin"),
        ("heading_deg", "a360"),
        ("groundspeed_mps", "lin"),
        ("climb_mps", "lin"),
    ),
    "attitude": (("roll_deg", "a180"), ("pitch_deg", "a180"), ("yaw_deg", "a180")),
    "gimbal": (
        ("gimbal_roll_deg", "a180"),
        ("gimbal_pitch_deg", "a180"),
        ("gimbal_yaw_deg", "a180"),
        ("gimbal_yaw_frame", "hold"),
    ),
}
_STREAM_OF = {"GLOBAL_POSITION_INT": "position", "ATTITUDE": "attitude"} | dict.fromkeys(_GIMBAL_RANK, "gimbal")


@dataclass
class _Vehicle:
    """Mutable per-system record; VehicleState objects are built from it on demand."""

    fields: dict[str, Any]
    streams: dict[str, History]
    snapshots: History
    is_vehicle: bool = False  # an autopilot heartbeat or autopilot navigation data was seen
    autopilot_comp: int | None = None
    gimbal_rank: int = 0
    gimbal_rank_t: float = -math.inf
    outranking: set[str] = field(default_factory=set)  # better sources heard (see _OUTRANKED_BY)
    last_snapshot_t: float = -math.inf


class Fleet:
    """Per-vehicle state and time-indexed history of the vehicles on one link."""

    def __init__(self, stale_after_s: float, history_s: float, max_samples: int) -> None:
        self.stale_after_s = stale_after_s
        self.history_s = history_s
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._vehicles: dict[int, _Vehicle] = {}
        self._gcs_ids: set[int] = set()

    # ------------------------------------------------------------------ folding

    def fold(self, msg: Any, mtype: str, t: float) -> None:
        """Fold one message of a decoded type, stamped t, into its sender's vehicle (or ignore the sender).
        A decoder's exception propagates: the caller counts it and goes on with the next message."""
        with self._lock:
            self._fold(msg, mtype, t)

    def _fold(self, msg: Any, mtype: str, t: float) -> None:
        sid, cid = msg.get_srcSystem(), msg.get_srcComponent()
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
            decoded = DECODERS[mtype](msg)
            if decoded is not None:
                vehicle.fields.update(decoded)
                vehicle.fields["last_heartbeat"] = t
        else:
            if mtype in _AUTOPILOT_TYPES:
                expected = vehicle.autopilot_comp if has_autopilot else mavutil.mavlink.MAV_COMP_ID_AUTOPILOT1
                if cid != expected or (not has_autopilot and sid in self._gcs_ids):
                    return
                vehicle = self._vehicle(sid)
                vehicle.is_vehicle = True
            else:
                if sid in self._gcs_ids and not has_autopilot:
                    return
                vehicle = self._vehicle(sid)
            decoded = DECODERS[mtype](msg)
            if decoded is not None:
                self._apply(vehicle, mtype, decoded, t)
        fields = vehicle.fields
        last = fields["time"]
        if last is None or t > last or last - t > 1.0:  # monotonic, except a clock reset (new log, reboot)
            fields["time"] = t
        if t - vehicle.last_snapshot_t >= SNAPSHOT_EVERY_S or t < vehicle.last_snapshot_t:
            vehicle.last_snapshot_t = t
            vehicle.snapshots.add(t, (dict(fields),))

    def _apply(self, vehicle: _Vehicle, mtype: str, decoded: Fields, t: float) -> None:
        """Take a message's fields unless a better source outranks it; feed its stream's history."""
        better = _OUTRANKED_BY.get(mtype)
        if better is not None and better[0] in vehicle.outranking:
            return
        rank = _GIMBAL_RANK.get(mtype)
        if rank is not None:
            if rank < vehicle.gimbal_rank and t - vehicle.gimbal_rank_t <= self.stale_after_s:
                return
            vehicle.gimbal_rank, vehicle.gimbal_rank_t = rank, t
        vehicle.fields.update(decoded)
        if _OUTRANKING.get(mtype) in decoded:
            vehicle.outranking.add(mtype)
        stream = _STREAM_OF.get(mtype)
        if stream is not None:
            history = vehicle.streams[stream]
            history.add(t, tuple(vehicle.fields[name] for name in history.names))

    def _vehicle(self, sid: int) -> _Vehicle:
        vehicle = self._vehicles.get(sid)
        if vehicle is None:
            age, n = self.history_s, self.max_samples
            vehicle = _Vehicle(
                fields={name: None for name in VehicleState.model_fields} | {"system_id": sid, "link_ok": False},
                streams={name: History(fields, age, n) for name, fields in _STREAM_FIELDS.items()},
                snapshots=History((("fields", "hold"),), age, n),
            )
            self._vehicles[sid] = vehicle
        return vehicle

    # ------------------------------------------------------------------ queries

    def vehicles(self) -> list[int]:
        """System ids of the vehicles seen, in order of appearance (GCS and bare components excluded)."""
        with self._lock:
            return [sid for sid, v in self._vehicles.items() if v.is_vehicle]

    def _pick(self, system_id: int | None) -> _Vehicle | None:
        if system_id is None:
            return next((v for v in self._vehicles.values() if v.is_vehicle), None)
        return self._vehicles.get(system_id)

    def state(self, system_id: int | None, now: float) -> VehicleState | None:
        """Latest state of a vehicle (None: the first one seen), link_ok judged against now."""
        with self._lock:
            vehicle = self._pick(system_id)
            if vehicle is None:
                return None
            fields = dict(vehicle.fields)
        hb = fields["last_heartbeat"]
        fields["link_ok"] = hb is not None and now - hb <= self.stale_after_s
        return VehicleState(**fields)

    def state_at(self, system_id: int | None, t: float) -> VehicleState | None:
        """State at time t: the fast streams interpolated between the samples around t, slower fields as
        they were at t (±SNAPSHOT_EVERY_S). None when t lies more than stale_after_s outside the history;
        a stream with no sample near t gives None for its fields."""
        gap = self.stale_after_s
        with self._lock:
            vehicle = self._pick(system_id)
            if vehicle is None:
                return None
            histories = list(vehicle.streams.values())
            spans = [h.span() for h in (*histories, vehicle.snapshots)]
            spans = [s for s in spans if s is not None]
            if not spans or t < min(s[0] for s in spans) - gap or t > max(s[1] for s in spans) + gap:
                return None
            snapshot = vehicle.snapshots.at(t, math.inf)
            fields = dict(snapshot["fields"]) if snapshot else dict(vehicle.fields)  # type: ignore[call-overload]
            for history in histories:
                if not len(history):
                    continue
                values = history.at(t, gap)
                fields.update(values if values is not None else dict.fromkeys(history.names))
        fields["time"] = t
        hb = fields["last_heartbeat"]
        fields["link_ok"] = hb is not None and -gap <= t - hb <= gap
        return VehicleState(**fields)

    def last_time(self, system_id: int | None) -> float | None:
        """When the vehicle last sent anything decoded (None: unknown vehicle or nothing yet)."""
        with self._lock:
            vehicle = self._pick(system_id)
            return vehicle.fields["time"] if vehicle is not None else None
