"""/api/webhooks: the configured endpoints with their delivery counts, every delivery and its failures,
and a retry for a delivery that failed for good.  Endpoint URLs are shown without query string or
credentials (receivers often put a token there); `endpoint` ids name them instead."""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies (local here).
import hashlib
from enum import Enum
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Path, Query
from pydantic import BaseModel, Field

from ground_station.api.access import Require
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.config import WebhooksConfig
from ground_station.store import Delivery, Store
from ground_station.store.deliveries import STATES
from ground_station.webhooks import WebhookDispatcher
from smarteye.wire.messages import AlertState
from smarteye.wire.rules import Severity

PREFIX = "/api/webhooks"
TAGS: list[str | Enum] = ["webhooks"]
DeliveryState = Annotated[str | None, Query(pattern=f"^({'|'.join(STATES)})$")]


def endpoint_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def shown_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class WebhookOut(BaseModel):
    endpoint: str = Field(description="Id of the endpoint (filter deliveries with it).")
    url: str = Field(description="Without query string or credentials.")
    min_severity: Severity
    states: list[AlertState]
    pending: int
    delivered: int
    failed: int
    last_error: str | None = Field(description="The latest failed attempt's error since the station started.")


class DeliveryOut(BaseModel):
    id: int
    endpoint: str
    url: str
    message_id: str = Field(description="The alert message's `id`.")
    alert_id: str
    state: str = Field(description="pending, delivered or failed (after the last attempt).")
    attempts: int
    next_attempt_time: float = Field(description="pending: when it is tried next (epoch s).")
    last_error: str | None
    last_status: int | None = Field(description="HTTP status of the last answer; None: no answer.")
    created_time: float
    finished_time: float | None

    @classmethod
    def of(cls, d: Delivery) -> "DeliveryOut":
        return cls(
            id=d.id, endpoint=endpoint_id(d.url), url=shown_url(d.url), message_id=d.message_id, alert_id=d.alert_id,
            state=d.state, attempts=d.attempts, next_attempt_time=d.next_attempt_time, last_error=d.last_error,
            last_status=d.last_status, created_time=d.created_time, finished_time=d.finished_time,
        )  # fmt: skip


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def add_webhooks_routes(
    app: FastAPI, store: Store, require: Require, config: WebhooksConfig, dispatcher: WebhookDispatcher | None
) -> None:
    Supervisor = Annotated[Principal, Depends(require(Permission.SUPERVISE))]
    urls = {endpoint_id(e.url): e.url for e in config.endpoints}

    @app.get(PREFIX, tags=TAGS, response_model=list[WebhookOut])
    def endpoints(principal: Supervisor) -> list[WebhookOut]:
        """The configured endpoints and how their deliveries stand."""
        summary = store.delivery_summary()
        stats = dispatcher.stats() if dispatcher is not None else {}
        result = []
        for e in config.endpoints:
            counts = summary.get(e.url, {})
            last_error = stats[e.url].last_error if e.url in stats else None
            result.append(WebhookOut(
                endpoint=endpoint_id(e.url), url=shown_url(e.url), min_severity=e.min_severity, states=e.states,
                pending=counts.get("pending", 0), delivered=counts.get("delivered", 0),
                failed=counts.get("failed", 0), last_error=last_error,
            ))  # fmt: skip
        return result

    @app.get(PREFIX + "/deliveries", tags=TAGS, response_model=DeliveryPageOut)
    def deliveries(
        principal: Supervisor,
        state: DeliveryState = None,
        endpoint: str | None = None,
        alert_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    ) -> DeliveryPageOut:
        """Deliveries matching every filter, newest first (state=failed: the failures, with their errors)."""
        if endpoint is not None and endpoint not in urls:
            raise HTTPException(404, f"no endpoint {endpoint!r}")
        page = store.query_deliveries(state=state, url=urls[endpoint] if endpoint else None, alert_id=alert_id,
                                      limit=limit, before_id=int(cursor) if cursor else None)  # fmt: skip
        return DeliveryPageOut(items=[DeliveryOut.of(d) for d in page.deliveries], next_cursor=page.next_cursor)

    @app.post(PREFIX + "/deliveries/{delivery_id}/retry", tags=TAGS, response_model=DeliveryOut)
    def retry(delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: Supervisor) -> DeliveryOut:
        """Send a delivery that failed for good again (its attempts start afresh)."""
        if not store.retry_delivery(delivery_id, principal.name):
            delivery = store.get_delivery(delivery_id)
            if delivery is None:
                raise HTTPException(404, f"no delivery {delivery_id}")
            raise HTTPException(409, f"delivery {delivery_id} is {delivery.state}, not failed")
        if dispatcher is not None:
            dispatcher.wake()
        delivery = store.get_delivery(delivery_id)
        assert delivery is not None
        return DeliveryOut.of(delivery)
