"""/api/vehicles: the station's vehicles, and "send a drone to look" for pilots.

Reading the vehicles needs the telemetry permission (pilots, supervisors, admins); commanding needs
the command permission (pilots and admins). A plan is checked against the limits and returned without
anything sent (409 names the broken limit); confirming it sends the commands one by one and returns
each with the vehicle's acknowledgement. Every command is in the audit log.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies (local here).
from enum import Enum, StrEnum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ground_station.api.access import Require
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.command.commander import Commander, CommandError
from ground_station.command.link import CommandOutcome
from ground_station.command.planner import PlanRefused, Target
from ground_station.store.store import Store
from smarteye.wire.names import NAME_RE

PREFIX = "/api/vehicles"
TAGS: list[str | Enum] = ["vehicles"]
Name = Annotated[str, Path(pattern=f"^{NAME_RE.pattern}$")]


class LookRequest(BaseModel):
    """Where to look: a point on the ground, and the alert or event it comes from (if any)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alert_id: str | None = Field(None, max_length=128, description="The alert this look confirms.")
    label: str | None = Field(None, max_length=128, description="What was seen there (shown with the plan).")


class TakeoffRequest(BaseModel):
    altitude_m: float = Field(20.0, ge=2, le=120, description="Height above home (m).")


class Action(StrEnum):
    HOLD = "hold"
    RTL = "rtl"
    ABORT = "abort"


class OutcomeOut(BaseModel):
    command: str = Field(description="The MAVLink command, e.g. MAV_CMD_DO_REPOSITION.")
    result: str = Field(description="The vehicle's answer (accepted, denied, failed, …) or timeout / link lost.")
    detail: str | None = Field(description="What the vehicle said with a refusal (STATUSTEXT).")
    elapsed_s: float

    @classmethod
    def of(cls, outcome: CommandOutcome) -> "OutcomeOut":
        return cls(command=outcome.command, result=outcome.result, detail=outcome.detail,
                   elapsed_s=round(outcome.elapsed_s, 3))  # fmt: skip


class CommandsOut(BaseModel):
    ok: bool = Field(description="Every command was accepted.")
    commands: list[OutcomeOut]


class ConfirmationOut(BaseModel):
    alert_id: str
    state: str = Field(description="confirmed: seen there by the drone after arrival; not_seen: nothing within the "
                       "confirmation window.")  # fmt: skip
    vehicle: str
    pilot: str = Field(description="Who sent it.")
    look_time: float = Field(description="When the pilot confirmed the flight (epoch s).")
    time: float = Field(description="Capture time of the confirming frame, or when the window ran out.")
    node: str | None
    stream: str | None
    event_id: str | None = Field(description="The confirming object; its snapshot is the drone's picture.")
    label: str | None
    distance_m: float | None = Field(description="From the target (m).")


def _done(outcomes: list[CommandOutcome]) -> CommandsOut:
    return CommandsOut(ok=all(o.ok for o in outcomes), commands=[OutcomeOut.of(o) for o in outcomes])


def add_command_routes(app: FastAPI, commander: Commander, require: Require, store: Store) -> None:
    Reader = Annotated[Principal, Depends(require(Permission.READ))]
    Pilot = Annotated[Principal, Depends(require(Permission.TELEMETRY))]
    Commanding = Annotated[Principal, Depends(require(Permission.COMMAND))]

    def checked(call: Any) -> Any:
        try:
            return call()
        except CommandError as error:
            status = 404 if str(error).startswith("no vehicle") else 409
            raise HTTPException(status, str(error)) from None
        except PlanRefused as error:
            raise HTTPException(409, f"refused before anything was sent: {error}") from None

    @app.get("/api/alerts/{alert_id}/confirmation", tags=["alerts"], response_model=ConfirmationOut)
    def confirmation(alert_id: Annotated[str, Path(max_length=128)], principal: Reader) -> ConfirmationOut:
        """What the latest drone sent to look at this alert found: confirmed (with the detection whose
        snapshot is the drone's picture) or not_seen. 404: no drone has looked yet."""
        row = store.alert_confirmation(alert_id)
        if row is None:
            raise HTTPException(404, f"no drone has looked at alert {alert_id!r}")
        return ConfirmationOut(**row)

    @app.get(PREFIX, tags=TAGS)
    def vehicles(principal: Pilot) -> list[dict[str, Any]]:
        """Every configured vehicle: link (connecting / ok / lost), mode, armed, position, home, gimbal,
        the current look flight with its progress, and its latest commands with their answers."""
        return commander.all_status()

    @app.get(PREFIX + "/{name}", tags=TAGS)
    def vehicle(name: Name, principal: Pilot) -> dict[str, Any]:
        """One vehicle's state, flight and latest commands."""
        return checked(lambda: commander.status(name))

    @app.post(PREFIX + "/{name}/plans", tags=TAGS)
    def plan(name: Name, look: LookRequest, principal: Commanding) -> dict[str, Any]:
        """Plan a look at a ground point: standoff point, altitude, route, distance, ETA. Nothing is sent;
        409 names the limit a refused plan breaks (distance from home, no-fly zone) or why the vehicle can't."""
        target = Target(look.lat, look.lon, look.alert_id, look.label)
        return checked(lambda: commander.plan(name, target, principal.name)).as_dict()

    @app.post(PREFIX + "/{name}/plans/{plan_id}/confirm", tags=TAGS, response_model=CommandsOut)
    async def confirm(name: Name, plan_id: Annotated[str, Path(max_length=64)], principal: Commanding) -> CommandsOut:
        """Fly the plan: GUIDED, reposition to the standoff point, camera at the target; each command once,
        stopping at the first the vehicle does not accept."""
        return _done(await run_in_threadpool(checked, lambda: commander.confirm(name, plan_id, principal.name)))

    @app.post(PREFIX + "/{name}/takeoff", tags=TAGS, response_model=CommandsOut)
    async def takeoff(name: Name, request: TakeoffRequest, principal: Commanding) -> CommandsOut:
        """GUIDED, arm, take off to `altitude_m`."""
        return _done(
            await run_in_threadpool(checked, lambda: commander.takeoff(name, request.altitude_m, principal.name))
        )

    @app.post(PREFIX + "/{name}/{action}", tags=TAGS, response_model=CommandsOut)
    async def act(name: Name, action: Action, principal: Commanding) -> CommandsOut:
        """hold (LOITER), rtl (return to launch) or abort (BRAKE now; the look flight is dropped)."""
        return _done([await run_in_threadpool(checked, lambda: commander.action(name, action.value, principal.name))])
