"""GeoJSON for GIS users: current geolocated detections and open alerts as Features (RFC 7946, lon/lat order).

A detection is the latest ground position of each object seen in the last `window_s` that has not ended;
an alert is one Feature per located object of each open alert (a MultiPoint when several). Properties
carry what a GIS layer filters on (node, stream, label, score, uncertainty, times; rule, severity, state).
The same Features are pushed live as messages arrive on `/api/live?format=geojson` (the live WebSocket, with its
authentication, origin check and revocation, sending only located detections and alerts, each a Feature).
"""

from __future__ import annotations

from typing import Any

from geojson_pydantic import Feature, FeatureCollection, MultiPoint, Point

from smarteye.wire.messages import Alert, DetectionEvent

GeoFeature = Feature[Point | MultiPoint, dict[str, Any]]


def detection_feature(event: DetectionEvent) -> GeoFeature | None:
    """The Feature of one event message (None without a ground position)."""
    if event.geo is None:
        return None
    return GeoFeature(
        type="Feature",
        id=f"{event.node}/{event.stream}/{event.event_id}",
        geometry=Point(type="Point", coordinates=(event.geo.lon, event.geo.lat)),
        properties={
            "kind": "detection", "node": event.node, "stream": event.stream, "event_id": event.event_id,
            "type": event.type, "track_id": event.track_id, "label": event.label, "score": event.score,
            "uncertainty_m": event.geo.uncertainty_m, "source": event.geo.source,
            "capture_time": event.capture_time, "first_seen": event.first_seen,
        },
    )  # fmt: skip


def alert_feature(alert: Alert) -> GeoFeature | None:
    """The Feature of one alert message: its located objects (None if none is located)."""
    located = [o for o in alert.objects if o.geo is not None]
    if not located:
        return None
    points = [(o.geo.lon, o.geo.lat) for o in located if o.geo is not None]
    geometry = (Point(type="Point", coordinates=points[0]) if len(points) == 1
                else MultiPoint(type="MultiPoint", coordinates=points))  # fmt: skip
    return GeoFeature(
        type="Feature",
        id=f"alert/{alert.alert_id}",
        geometry=geometry,
        properties={
            "kind": "alert", "node": alert.node, "stream": alert.stream, "alert_id": alert.alert_id,
            "rule": alert.rule, "rule_kind": alert.rule_kind, "severity": alert.severity, "state": alert.state,
            "zone": alert.zone, "line": alert.line, "count": alert.count, "labels": [o.label for o in located],
            "uncertainty_m": [o.geo.uncertainty_m for o in located if o.geo is not None],
            "start_time": alert.start_time, "capture_time": alert.capture_time,
        },
    )  # fmt: skip


def current_detections(messages: list[DetectionEvent]) -> FeatureCollection:
    """The newest located message of each object among `messages` (newest first), ended objects left out."""
    latest: dict[tuple[str, str, str], DetectionEvent] = {}
    for event in messages:
        latest.setdefault((event.node, event.stream, event.event_id), event)
    features = [f for e in latest.values() if e.type != "end" and (f := detection_feature(e)) is not None]
    return FeatureCollection(type="FeatureCollection", features=features)


def open_alerts(alerts: list[Alert]) -> FeatureCollection:
    features = [f for a in alerts if a.state != "end" and (f := alert_feature(a)) is not None]
    return FeatureCollection(type="FeatureCollection", features=features)


def geojson_text(kind: str | None, payload: str) -> str | None:
    """The live message as a GeoJSON Feature (`/api/live?format=geojson`), None if it is nothing located."""
    try:
        feature = feature_of_message(kind or "", payload)
    except ValueError:  # not a valid event or alert: nothing to show a GIS
        return None
    return None if feature is None else feature.model_dump_json(exclude_none=True)


def feature_of_message(kind: str, payload: str) -> GeoFeature | None:
    """The Feature a live message maps to, if it is a located detection or alert."""
    if kind == "event":
        return detection_feature(DetectionEvent.model_validate_json(payload))
    if kind == "alert":
        return alert_feature(Alert.model_validate_json(payload))
    return None
