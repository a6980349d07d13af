"""Cursor on Target (CoT) for TAK/ATAK users: geolocated detections and alerts as CoT events over UDP or TCP.

Each geolocated detection becomes an event of type `a-u-G` (unknown ground track; vehicles
`a-u-G-E-V`), uid stable over the object's life so TAK moves one marker, `ce` the 1-sigma horizontal
error from the edge's uncertainty, `stale` a configured time after the frame. An alert with located
objects becomes one event at their centroid, type `b-a-o-tbl` (an alarm), with the rule, zone and
objects in the remarks. `how` is `m-p` (machine, predicted: a position computed from a camera pose, not
measured on the object). The XML is a handful of elements, built with the standard library; sending is a
small bounded queue and one thread, so a slow or absent TAK server never holds the ingest up (the oldest
are dropped, counted).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import xml.etree.ElementTree as ET
from collections import deque
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from smarteye.config.urls import redact_url
from smarteye.strict import StrictModel
from smarteye.wire.messages import Alert, DetectionEvent, GeoPosition

log = logging.getLogger("ground_station.cot")

VEHICLE_LABELS = frozenset({"car", "truck", "bus", "motorcycle", "bicycle", "van", "vehicle", "small vehicle",
                            "large vehicle"})  # fmt: skip
UNKNOWN_CE_M = 9_999_999.0  # CoT's "unknown" for ce and le
ALARM_TYPE = "b-a-o-tbl"


class CotConfig(StrictModel):
    """Where to send CoT, and what."""

    url: str | None = Field(
        None,
        title="CoT destination",
        description="udp://host:port (e.g. udp://239.2.3.1:6969, the ATAK SA multicast) or tcp://host:port (a TAK "
        "server's plain CoT input, e.g. tcp://tak:8087); unset: no CoT.",
    )
    stale_s: float = Field(60.0, gt=0, le=86_400, title="Stale after", description="Seconds a CoT event stays valid.")
    detections: bool = Field(True, title="Detections", description="Send geolocated detections.")
    alerts: bool = Field(True, title="Alerts", description="Send alerts that have located objects.")
    queue_max: int = Field(1000, ge=1, le=100_000, title="Queue size", description="Oldest dropped beyond this.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("udp", "tcp") or not parts.hostname or parts.port is None:
            raise ValueError(f"url {value!r}: expected udp://host:port or tcp://host:port")
        return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _event(uid: str, cot_type: str, at: float, stale_s: float, geo: GeoPosition, callsign: str, remarks: str) -> bytes:
    ce = geo.uncertainty_m if geo.uncertainty_m is not None else UNKNOWN_CE_M
    event = ET.Element("event", version="2.0", uid=uid, type=cot_type, how="m-p", time=_iso(at), start=_iso(at),
                       stale=_iso(at + stale_s))  # fmt: skip
    ET.SubElement(event, "point", lat=f"{geo.lat:.7f}", lon=f"{geo.lon:.7f}", hae=f"{UNKNOWN_CE_M:.1f}",
                  ce=f"{ce:.1f}", le=f"{UNKNOWN_CE_M:.1f}")  # fmt: skip
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", callsign=callsign)
    ET.SubElement(detail, "remarks").text = remarks
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(event)


def detection_cot(node: str, event: DetectionEvent, stale_s: float) -> bytes | None:
    """The CoT event of a geolocated detection (None without a ground position): its track-fused position when
    the edge sends one (a surer point and ce), else this frame's fix."""
    geo = event.geo_fused if event.geo is not None and event.geo_fused is not None else event.geo
    if geo is None:
        return None
    cot_type = "a-u-G-E-V" if event.label in VEHICLE_LABELS else "a-u-G"
    remarks = f"SmartEye {node}/{event.stream}: {event.label} {event.score:.2f} (track {event.track_id}, {event.type})"
    uid = f"smarteye-{node}-{event.stream}-{event.event_id}"
    return _event(uid, cot_type, event.capture_time, stale_s, geo, f"{event.label} {event.track_id}", remarks)


def alert_cot(node: str, alert: Alert, stale_s: float) -> bytes | None:
    """One CoT alarm at the centroid of the alert's located objects (None if none is located)."""
    located = [o.geo for o in alert.objects if o.geo is not None]
    if not located:
        return None
    lat = sum(g.lat for g in located) / len(located)
    lon = sum(g.lon for g in located) / len(located)
    errors = [g.uncertainty_m for g in located]
    ce = None if None in errors else max(e for e in errors if e is not None)
    centre = GeoPosition(lat=lat, lon=lon, uncertainty_m=ce, source=located[0].source)
    where = alert.zone or alert.line or ""
    labels = ", ".join(sorted({o.label for o in alert.objects}))
    remarks = (f"SmartEye alert {alert.severity}: rule {alert.rule} ({alert.rule_kind}) {where} on {node}/"
               f"{alert.stream}, {alert.state}, {alert.count} object(s): {labels}")  # fmt: skip
    stale = 0.0 if alert.state == "end" else stale_s  # an ended alert goes stale at once
    return _event(f"smarteye-alert-{alert.alert_id}", ALARM_TYPE, alert.capture_time, stale, centre,
                  f"{alert.rule} {alert.stream}", remarks)  # fmt: skip


class CotSender:
    """Sends CoT events to one UDP or TCP destination from its own thread, through a bounded queue."""

    def __init__(self, config: CotConfig) -> None:
        self.config = config
        self._queue: deque[bytes] = deque(maxlen=config.queue_max)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        parts = urlsplit(config.url or "udp://127.0.0.1:0")
        self._tcp = parts.scheme == "tcp"
        self._address = (parts.hostname or "127.0.0.1", parts.port or 0)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.config.url is not None

    def start(self) -> None:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="cot", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(3)
        self._close()

    def on_message(self, kind: str, node: str, payload: str) -> None:
        """Every valid message the station took: detections and alerts with a ground position go out."""
        if not self.enabled:
            return
        try:
            if kind == "event" and self.config.detections:
                data = detection_cot(node, DetectionEvent.model_validate_json(payload), self.config.stale_s)
            elif kind == "alert" and self.config.alerts:
                data = alert_cot(node, Alert.model_validate_json(payload), self.config.stale_s)
            else:
                return
        except ValueError as error:  # already validated by ingest; a mismatch here must not stop anything
            log.debug("no CoT for a %s from %s: %s", kind, node, error)
            return
        if data is not None:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(data)
            self._wake.set()

    def _close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _connect(self) -> socket.socket:
        if self._tcp:
            sock = socket.create_connection(self._address, timeout=5)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # a site's LAN, not beyond
        return sock

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            while self._queue and not self._stop.is_set():
                data = self._queue[0]
                try:
                    if self._socket is None:
                        self._socket = self._connect()
                    if self._tcp:
                        self._socket.sendall(data)
                    else:
                        self._socket.sendto(data, self._address)
                except OSError as error:
                    self.errors += 1
                    log.warning("CoT to %s: %s; retrying in %.0f s", redact_url(self.config.url or ""), error, backoff)
                    self._close()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    break
                self._queue.popleft()
                self.sent += 1
                backoff = 1.0
        self._close()
