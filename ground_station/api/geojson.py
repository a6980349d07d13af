"""/api/geojson: what SmartEye sees on the ground, as GeoJSON FeatureCollections for GIS tools."""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies (local here).
import time
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse

from ground_station.api.access import Require
from ground_station.auth.accounts import Principal
from ground_station.auth.roles import Permission
from ground_station.feeds.geojson import current_detections, open_alerts
from ground_station.store.queries import MAX_PAGE
from ground_station.store.store import Store
from smarteye.wire.messages import Alert

PREFIX = "/api/geojson"
TAGS: list[str | Enum] = ["geojson"]


class GeoJsonResponse(JSONResponse):
    media_type = "application/geo+json"  # RFC 7946's type: GIS clients pick the reader by it


def add_geojson_routes(app: FastAPI, store: Store, require: Require) -> None:
    Reader = Annotated[Principal, Depends(require(Permission.READ))]

    @app.get(PREFIX + "/detections", tags=TAGS, response_class=GeoJsonResponse)
    def detections(
        principal: Reader,
        window_s: Annotated[float, Query(gt=0, le=3600, description="Objects seen within this many seconds.")] = 60,
    ) -> dict[str, Any]:
        """Every object seen in the window and not ended: a Point at its latest ground position, with label,
        score, uncertainty (m) and times in the properties."""
        page = store.query_events(since=time.time() - window_s, limit=MAX_PAGE)
        return current_detections([e.message() for e in page.events]).model_dump(mode="json", exclude_none=True)

    @app.get(PREFIX + "/alerts", tags=TAGS, response_class=GeoJsonResponse)
    def alerts(principal: Reader) -> dict[str, Any]:
        """Every open alert with located objects: a Point (one object) or MultiPoint, with rule, severity,
        state and labels in the properties."""
        page = store.query_alerts(state=["start", "update"], limit=MAX_PAGE)
        messages = [store.alert_payload(a.alert_id) for a in page.alerts]
        return open_alerts([Alert.model_validate_json(m) for m in messages if m]).model_dump(
            mode="json", exclude_none=True
        )
