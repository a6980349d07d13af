"""Cross-command: plan, confirm and fly "look at" missions on the station's vehicles, with every step
answered by the vehicle and recorded in the audit log.

A pilot asks for a plan (checked against the limits, nothing sent); on confirmation the commander
sends, one at a time and stopping at the first refusal: GUIDED (if not already), MAV_CMD_DO_REPOSITION
to the standoff point as COMMAND_INT, and MAV_CMD_DO_SET_ROI_LOCATION at the target so the gimbal
points at it. Progress (distance to the standoff point, ETA, arrival) is read from the vehicle's own
position. Hold, return-to-launch and abort are single commands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ground_station.command.config import CommandConfig, VehicleConfig
from ground_station.command.link import CommandOutcome, MavlinkConnection, VehicleLink, mavlink
from ground_station.command.planner import LookPlan, Target, distance_m, plan_look
from smarteye.wire.messages import DetectionEvent

Audit = Callable[[str, str, str, dict[str, Any]], None]  # actor, action, target, detail
Confirmations = Callable[[dict[str, Any]], None]  # one row of alert_confirmations


class CommandError(Exception):
    """A request the commander cannot act on (unknown vehicle or plan, link lost, landed…); the message says why."""


@dataclass
class Flight:
    """A confirmed look flight and how it is going."""

    plan: LookPlan
    confirmed_by: str
    confirmed_at: float = field(default_factory=time.time)
    state: str = "flying"  # flying | arrived | held | returning | aborted | failed
    arrived_at: float | None = None
    seen: dict[str, Any] | None = None  # confirmed | not_seen, once decided (see Commander.on_message)

    def as_dict(self, vehicle: VehicleLink, arrive_m: float) -> dict[str, Any]:
        s = vehicle.state
        remaining = None
        if s.lat is not None:
            remaining = distance_m(s.lat, s.lon, *self.plan.standoff)
        eta = None if remaining is None else remaining / max(s.ground_speed_m_s, 1.0)
        return {
            "plan": self.plan.as_dict(), "state": self.state, "confirmed_by": self.confirmed_by,
            "confirmed_at": self.confirmed_at, "arrived_at": self.arrived_at,
            "distance_to_standoff_m": None if remaining is None else round(remaining, 1),
            "eta_s": None if eta is None or self.state != "flying" else round(eta, 1), "arrive_m": arrive_m,
            "seen": self.seen,
        }  # fmt: skip


class Commander:
    """The station's vehicles: their links, pending plans and confirmed flights."""

    def __init__(
        self, config: CommandConfig, audit: Audit | None = None, confirmations: Confirmations | None = None
    ) -> None:
        self.config = config
        self.audit = audit or (lambda *_: None)
        self.confirmations = confirmations or (lambda _: None)
        self.vehicles: dict[str, VehicleConfig] = {v.name: v for v in config.vehicles}
        # One connection per URL: vehicles sharing a link (a radio, a MAVProxy) are told apart by system id.
        self.connections = {v.url: MavlinkConnection(v.url) for v in config.vehicles}
        self.links: dict[str, VehicleLink] = {
            v.name: VehicleLink(v.url, v.system_id, config.heartbeat_timeout_s, self.connections[v.url])
            for v in config.vehicles
        }
        self.plans: dict[str, LookPlan] = {}
        self.flights: dict[str, Flight] = {}
        self.log: dict[str, list[dict[str, Any]]] = {name: [] for name in self.vehicles}
        self._lock = threading.Lock()

    def start(self) -> None:
        for connection in self.connections.values():
            connection.start()

    def stop(self) -> None:
        for connection in self.connections.values():
            connection.stop()

    # -- reading -------------------------------------------------------------------------------------
    def _link(self, name: str) -> VehicleLink:
        link = self.links.get(name)
        if link is None:
            raise CommandError(f"no vehicle {name!r} (configured: {', '.join(self.links) or 'none'})")
        return link

    def status(self, name: str) -> dict[str, Any]:
        link = self._link(name)
        self._update_progress(name)
        flight = self.flights.get(name)
        return {
            "name": name,
            "url": self.vehicles[name].url,
            "stream": self.vehicles[name].stream,
            **link.state.as_dict(self.config.heartbeat_timeout_s),
            "error": link.error,
            "flight": None if flight is None else flight.as_dict(link, self.config.arrive_m),
            "commands": self.log[name][-10:],
        }

    def all_status(self) -> list[dict[str, Any]]:
        return [self.status(name) for name in self.links]

    def _update_progress(self, name: str) -> None:
        flight, s = self.flights.get(name), self.links[name].state
        if flight is None:
            return
        arrived = s.lat is not None and distance_m(s.lat, s.lon, *flight.plan.standoff) <= self.config.arrive_m
        if flight.state == "flying" and arrived:
            flight.state, flight.arrived_at = "arrived", time.time()
        if (flight.arrived_at is not None and flight.seen is None
                and time.time() - flight.arrived_at > self.config.confirm_window_s):  # fmt: skip
            self._decide(name, flight, {"state": "not_seen", "time": time.time()})

    # -- feedback ----------------------------------------------------------------------------------------
    def on_message(self, kind: str, node: str, payload: str) -> None:
        """Every message the station takes: a detection on a looking vehicle's stream near its target, after
        arrival, confirms the look (and the alert it came from)."""
        if kind != "event" or not self.flights:
            return
        try:
            event = DetectionEvent.model_validate_json(payload)
        except ValueError:  # ingest validated it already; never let a mismatch reach the writer's thread
            return
        if event.geo is None:
            return
        for name, flight in list(self.flights.items()):
            watching = self.vehicles[name].stream == f"{node}/{event.stream}"
            if not watching or flight.arrived_at is None or flight.seen is not None:
                continue
            if event.capture_time < flight.arrived_at:  # seen on the way in: not what the look is for
                continue
            away = distance_m(event.geo.lat, event.geo.lon, flight.plan.target.lat, flight.plan.target.lon)
            if away <= self.config.confirm_radius_m:
                self._decide(name, flight, {
                    "state": "confirmed", "time": event.capture_time, "node": node, "stream": event.stream,
                    "event_id": event.event_id, "label": event.label, "distance_m": round(away, 1),
                })  # fmt: skip
        for name in list(self.flights):
            self._update_progress(name)

    def _decide(self, name: str, flight: Flight, seen: dict[str, Any]) -> None:
        """Keep the result (the alert's row first, so whoever sees `flight.seen` finds it stored)."""
        alert_id = flight.plan.target.alert_id
        if alert_id is not None:
            empty = dict.fromkeys(("node", "stream", "event_id", "label", "distance_m"))
            row = {"alert_id": alert_id, "vehicle": name, "pilot": flight.confirmed_by,
                   "look_time": flight.confirmed_at, **empty, **seen}  # fmt: skip
            self.confirmations(row)
            self.audit("station", "alert.confirm", alert_id, row)
        flight.seen = {"vehicle": name, **seen}

    # -- planning --------------------------------------------------------------------------------------
    def plan(self, name: str, target: Target, author: str) -> LookPlan:
        """A checked plan (PlanRefused names the limit); nothing is sent to the vehicle."""
        link = self._link(name)
        s = link.state
        if s.link_state(self.config.heartbeat_timeout_s) != "ok":
            raise CommandError(f"{name}: link {s.link_state(self.config.heartbeat_timeout_s)}: cannot plan")
        if s.lat is None:
            raise CommandError(f"{name} has no position yet (no GPS fix or position estimate)")
        home = (s.home[0], s.home[1]) if s.home else (s.lat, s.lon)
        plan = plan_look(self.config, name, (s.lat, s.lon), home, target)
        plan.author = author
        with self._lock:
            now = time.time()
            self.plans = {k: p for k, p in self.plans.items() if now - p.created < self.config.plan_ttl_s}
            self.plans[plan.id] = plan
        return plan

    # -- commanding ------------------------------------------------------------------------------------
    def _record(self, name: str, actor: str, outcome: CommandOutcome, extra: dict[str, Any] | None = None) -> None:
        entry = {"time": time.time(), "actor": actor, "command": outcome.command, "result": outcome.result,
                 "detail": outcome.detail, **(extra or {})}  # fmt: skip
        self.log[name].append(entry)
        del self.log[name][:-100]
        self.audit(actor, "vehicle.command", name, entry)

    def _in_turn(
        self, name: str, actor: str, steps: list[Callable[[], CommandOutcome]], extra: dict[str, Any]
    ) -> list[CommandOutcome]:
        """Each step once, recorded, stopping at the first the vehicle does not accept (never retried)."""
        outcomes: list[CommandOutcome] = []
        for step in steps:
            outcome = step()
            outcomes.append(outcome)
            self._record(name, actor, outcome, extra)
            if not outcome.ok:
                break
        return outcomes

    def confirm(self, name: str, plan_id: str, actor: str) -> list[CommandOutcome]:
        """Fly a plan: each command once, stopping at the first that is not accepted."""
        link = self._link(name)
        with self._lock:
            plan = self.plans.pop(plan_id, None)
        if plan is None or plan.vehicle != name:
            raise CommandError(f"no pending plan {plan_id!r} for {name} (expired after {self.config.plan_ttl_s:g} s?)")
        s = link.state
        if not s.armed or (s.alt_m or 0.0) < 1.0:
            raise CommandError(f"{name} is not flying: take off first")
        timeout = self.config.ack_timeout_s
        target = {"plan": plan.id, "alert_id": plan.target.alert_id}
        steps: list[Callable[[], CommandOutcome]] = []
        if s.mode != "GUIDED":
            steps.append(lambda: link.set_mode("GUIDED", timeout))
        lat, lon = plan.standoff
        steps.append(lambda: link.command(
            mavlink.MAV_CMD_DO_REPOSITION, (-1, mavlink.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE, 0, float("nan")),
            as_int=True, x=int(lat * 1e7), y=int(lon * 1e7), z=plan.altitude_m, timeout=timeout,
        ))  # fmt: skip
        steps.append(lambda: link.command(
            mavlink.MAV_CMD_DO_SET_ROI_LOCATION, (0,), as_int=True, x=int(plan.target.lat * 1e7),
            y=int(plan.target.lon * 1e7), z=0.0, timeout=timeout,
        ))  # fmt: skip
        outcomes = self._in_turn(name, actor, steps, target)
        if all(o.ok for o in outcomes):
            self.flights[name] = Flight(plan, actor)
        return outcomes

    def takeoff(self, name: str, altitude_m: float, actor: str) -> list[CommandOutcome]:
        """GUIDED, arm, take off: what a pilot does before sending a drone that is on the ground."""
        link = self._link(name)
        timeout = self.config.ack_timeout_s
        steps = [
            lambda: link.set_mode("GUIDED", timeout),
            lambda: link.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (1,), timeout=timeout),
            lambda: link.command(
                mavlink.MAV_CMD_NAV_TAKEOFF, (0, 0, 0, float("nan"), 0, 0, altitude_m), timeout=timeout
            ),
        ]
        return self._in_turn(name, actor, steps, {"altitude_m": altitude_m})

    def action(self, name: str, action: str, actor: str) -> CommandOutcome:
        """hold (LOITER: stop and stay), rtl (return to launch), abort (BRAKE now, the flight is dropped)."""
        link = self._link(name)
        timeout = self.config.ack_timeout_s
        if action == "hold":
            outcome = link.set_mode("LOITER", timeout)
        elif action == "rtl":
            outcome = link.command(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, timeout=timeout)
        elif action == "abort":
            outcome = link.set_mode("BRAKE", timeout)
        else:
            raise CommandError(f"unknown action {action!r}: hold, rtl or abort")
        self._record(name, actor, outcome, {"action": action})
        flight = self.flights.get(name)
        if flight is not None and outcome.ok:
            flight.state = {"hold": "held", "rtl": "returning", "abort": "aborted"}[action]
        return outcome
