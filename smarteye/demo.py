"""`smarteye demo`: a private broker (TLS, a login per client, the ACL of configs/mosquitto/), a
GStreamer RTSP "site camera" playing the sample video, a second camera from a file, a simulated drone
(real aerial video with KLV metadata as MPEG-TS over UDP) and an edge node — with the events shown live
in the terminal exactly as an MQTT subscriber receives them, geolocated for the drone."""

from __future__ import annotations

import collections
import json
import logging
import math
import secrets
import shutil
import socket
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from edge.config.node import EdgeConfig
from edge.factory import build_node
from edge.node import EdgeNode
from ground_station.auth.roles import Role
from ground_station.config import GroundStationConfig
from ground_station.service import GroundStation
from smarteye.demo_assets import gather_demo_assets
from smarteye.sim.broker import STATION_USER, MosquittoBroker
from smarteye.sim.copter import CopterSimulator
from smarteye.sim.drone import DroneSimulator
from smarteye.sim.ports import free_tcp_port, free_udp_port
from smarteye.sim.rtsp_server import RtspServer
from smarteye.sim.synthetic_drone import SyntheticDroneFlight
from smarteye.wire.messages import Alert, DetectionEvent, StreamStatus
from smarteye.wire.topics import ANY, alerts_topic, events_topic, status_topic

log = logging.getLogger("smarteye.demo")

DEMO_NODE = "demo-edge"  # also its login on the demo's broker
DEFAULT_WEB_PORT = 8080
DEMO_MPEGTS_PORT = 5600  # QGroundControl's default UDP video port
DEMO_USER = "demo"
SHOWN_EVENTS = 18
SHOWN_ALERTS = 8
# Where the simulated drone flies when the real recording is missing (a made-up site).
SYNTHETIC_SITE = (46.5191, 6.5668)
DEMO_VEHICLE = "copter1"

# Example rules, so a new user sees alerts within a minute (each stream shows another kind).
SITE_CAM_RULES = {
    # vtest.avi: people cross the square in both directions, a group stands by the sign.
    "zones": [{"name": "square", "points": [(0.0, 0.33), (0.62, 0.3), (1.0, 0.42), (1.0, 0.86), (0.5, 0.6),
                                            (0.0, 0.47)], "filter": {"labels": ["person"], "min_time_s": 0.5}}],
    "lines": [{"name": "walkway", "points": [(0.6, 0.25), (0.6, 0.8)], "filter": {"labels": ["person"]}}],
    "rules": [
        {"name": "crossing", "kind": "cross", "line": "walkway", "severity": "info"},
        {"name": "group", "kind": "crowd", "zone": "square", "min_count": 3, "duration_s": 2},
        {"name": "lingering", "kind": "loiter", "zone": "square", "duration_s": 8},
    ],
    "clip": {"pre_s": 3, "post_s": 3},
}  # fmt: skip
PARKING_RULES = {
    # intel_car-detection.mp4: a parking lot from above; COCO calls some cars trucks.
    "zones": [{"name": "lot", "points": [(0.05, 0.05), (0.95, 0.05), (0.95, 0.95), (0.05, 0.95)],
               "filter": {"labels": ["car", "truck"], "min_frames": 3}}],
    "rules": [{"name": "vehicle-in-lot", "kind": "enter", "zone": "lot", "severity": "info", "cooldown_s": 10}],
    "clip": {"pre_s": 2, "post_s": 3},
}  # fmt: skip


def drone_geofence(corners: list[tuple[float, float]]) -> dict:
    """A geofence on the ground the drone looks at: the left half of its first frame's footprint (UL, UR, LR, LL
    corners from its KLV), so objects on the left of the picture are inside and those on the right are not."""
    (ul, ur, lr, ll) = corners
    top = ((ul[0] + ur[0]) / 2, (ul[1] + ur[1]) / 2)
    bottom = ((ll[0] + lr[0]) / 2, (ll[1] + lr[1]) / 2)
    return {
        "zones": [{"name": "restricted", "space": "geo", "points": [ul, top, bottom, ll]}],
        "rules": [{"name": "in-restricted-area", "kind": "inside", "zone": "restricted", "severity": "critical"}],
        "clip": {"pre_s": 2, "post_s": 2},
    }


class _EventBoard:
    """What the terminal shows: the latest events and each stream's status, fed by MQTT."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: collections.deque[DetectionEvent] = collections.deque(maxlen=SHOWN_EVENTS)
        self.status: dict[str, StreamStatus] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.located: dict[str, DetectionEvent] = {}  # latest geolocated event per stream
        self.alerts: collections.deque[Alert] = collections.deque(maxlen=SHOWN_ALERTS)

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            data = json.loads(message.payload)
        except ValueError:
            return
        with self.lock:
            if data.get("kind") == "event":
                event = DetectionEvent.model_validate(data)
                self.events.appendleft(event)
                self.counts[event.type.value] += 1
                if event.geo is not None:
                    self.located[event.stream] = event
            elif data.get("kind") == "alert":
                self.alerts.appendleft(Alert.model_validate(data))
            elif data.get("kind") == "status":
                status = StreamStatus.model_validate(data)
                self.status[status.stream] = status

    def render(self, broker_url: str) -> Group:
        with self.lock:
            streams = Table(title=f"streams (broker {broker_url})", expand=True)
            for column in ("stream", "state", "source", "size", "fps in", "fps detect", "dropped", "latency"):
                streams.add_column(column)
            for s in sorted(self.status.values(), key=lambda s: s.stream):
                streams.add_row(
                    s.stream,
                    s.state.value + (f" ({s.reason})" if s.reason and s.state != "live" else ""),
                    s.url,
                    f"{s.width}x{s.height}" if s.width else "-",
                    f"{s.fps:.1f}",
                    f"{s.processed_fps:.1f}",
                    str(s.dropped),
                    f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-",
                )
            totals = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "waiting for events…"
            events = Table(title=f"events ({totals})", expand=True)
            for column in (
                "time",
                "type",
                "stream",
                "track",
                "label",
                "score",
                "box (px)",
                "latency",
                "ground position",
            ):
                events.add_column(column)
            for e in self.events:
                style = {"new": "green", "end": "red"}.get(e.type.value, "")
                events.add_row(
                    datetime.fromtimestamp(e.capture_time).strftime("%H:%M:%S.%f")[:-3],
                    e.type.value,
                    e.stream,
                    str(e.track_id),
                    e.label,
                    f"{e.score:.2f}",
                    f"{e.box.x1:.0f},{e.box.y1:.0f} {e.box.x2 - e.box.x1:.0f}x{e.box.y2 - e.box.y1:.0f}",
                    f"{(e.publish_time - e.capture_time) * 1000:.0f} ms",
                    _geo_text(e),
                    style=style,
                )
            located = Table(title="latest ground positions", expand=True)
            for column in ("stream", "label", "track", "ground position", "telemetry age"):
                located.add_column(column)
            for e in sorted(self.located.values(), key=lambda e: e.stream):
                age = e.geo.telemetry_age_s if e.geo else None
                located.add_row(
                    e.stream, e.label, str(e.track_id), _geo_text(e), f"{age:.2f} s" if age is not None else "-"
                )
            alerts = Table(title="alerts (rules on each stream; supervisors see them at /alerts)", expand=True)
            for column in ("time", "state", "stream", "rule", "severity", "objects", "count"):
                alerts.add_column(column)
            for a in self.alerts:
                style = {"start": "bold yellow", "end": "dim"}.get(a.state.value, "")
                objects = ", ".join(f"{o.label} #{o.track_id}" for o in a.objects[:4]) + ("…" if len(a.objects) > 4
                                                                                               else "")  # fmt: skip
                alerts.add_row(datetime.fromtimestamp(a.capture_time).strftime("%H:%M:%S"), a.state.value, a.stream,
                               a.rule, a.severity.value, objects, str(a.count), style=style)  # fmt: skip
            return Group(streams, alerts, located, events)


def run_demo(duration: float | None = None, console: Console | None = None) -> None:
    console = console or Console()
    assets = gather_demo_assets()  # before anything starts: without a model there is nothing to run
    for sentence in assets.left_out:  # said once, plainly, with the command that adds each part
        console.print(f"[yellow]note:[/] {sentence}", soft_wrap=True)
    # A private broker run as a site should run it (configs/mosquitto/): TLS, a login for the edge node
    # and one for the station, and the ACL by which the node may publish only under its own topics.
    broker = MosquittoBroker.secured([DEMO_NODE])
    broker.start()
    broker_url = broker.url
    workdir = Path(tempfile.mkdtemp(prefix="smarteye-demo-"))  # a fresh store and spool per run
    copter_port = free_tcp_port()  # the sendable copter, as ArduCopter SITL serves its MAVLink on TCP
    station = _ground_station(broker.client_settings(STATION_USER), workdir, f"tcp:127.0.0.1:{copter_port}")
    password = secrets.token_urlsafe(12)  # never a built-in default, not even for the demo
    station.accounts.create_user(DEMO_USER, password, Role.ADMIN)
    _, uplink_token = station.accounts.create_token("demo-edge", Role.EDGE, "demo")
    camera = RtspServer({"/cam1": assets.site_video}, loop=True)
    drone_port = free_tcp_port()
    drone: DroneSimulator | SyntheticDroneFlight
    if assets.drone_recording is not None:
        drone = DroneSimulator(assets.drone_recording, "127.0.0.1", drone_port)
        klv = {"source": "klv"}
        drone_source = {"name": "drone", "url": f"udp://127.0.0.1:{drone_port}", "geo": {"telemetry": klv},
                        "rules": drone_geofence(drone.first_footprint())}  # fmt: skip
    else:  # the site camera's scene seen from a drone circling the site, told by synthetic MAVLink
        mavlink_port = free_udp_port()
        drone = SyntheticDroneFlight(f"udpout:127.0.0.1:{mavlink_port}", *SYNTHETIC_SITE)
        drone_source = {"name": "drone", "url": camera.url("/cam1"),
                        "geo": {"telemetry": {"source": "mavlink", "mavlink_url": f"udpin:127.0.0.1:{mavlink_port}"}},
                        "rules": drone_geofence(_square_around(*SYNTHETIC_SITE, half_m=40.0))}  # fmt: skip
    # A copter a pilot can send from the map or an alert (its home under the drone's first view: the geofence
    # alerts are there). It follows ArduCopter's ways (no arming before a position estimate, ~10 s here).
    home = _centroid(drone.first_footprint()) if assets.drone_recording is not None else SYNTHETIC_SITE
    copter = CopterSimulator(f"tcpin:127.0.0.1:{copter_port}", home=(*home, 0.0), position_estimate_after_s=10.0)
    sources: list[dict[str, Any]] = [{"name": "site-cam", "url": camera.url("/cam1"), "rules": SITE_CAM_RULES}]
    if assets.parking_video is not None:
        sources.append({"name": "parking", "url": str(assets.parking_video), "loop": True, "rules": PARKING_RULES})
    # The demo's drone shares detection equally with the cameras (a drone outranks fixed cameras by default, which
    # on two cores would leave the site camera about one detection in eleven: a demo should show every stream).
    drone_source["priority"] = 1
    sources.append(drone_source)
    node: EdgeNode | None = None
    subscriber: mqtt.Client | None = None
    try:
        copter.start()
        station.start()
        camera.start()
        config = EdgeConfig.model_validate(
            {
                "node": DEMO_NODE,
                "sources": sources,
                "detector": {"conf": 0.2, "model": str(assets.model)},
                "mqtt": {**broker.client_settings(DEMO_NODE), "spool_dir": str(workdir / "spool")},
                "video": {
                    "whep": {"port": 8889},  # taken (a second demo): the node takes the next port and says so
                    "udp_outputs": {"drone": f"udp://127.0.0.1:{DEMO_MPEGTS_PORT}"},
                    "uplink": {"url": station.url, "token": uplink_token},
                },
                "status_interval_s": 2.0,
            }
        )
        board = _EventBoard()
        subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"smarteye-demo-{time.time_ns()}")
        subscriber.on_message = board.on_message
        prefix = config.mqtt.topic_prefix
        watched = [topic(prefix, config.node, ANY) for topic in (events_topic, status_topic, alerts_topic)]
        subscriber.on_connect = lambda c, *_: c.subscribe([(topic, 1) for topic in watched])
        subscriber.username_pw_set(STATION_USER, broker.users[STATION_USER])  # reads all; the node's own may not
        subscriber.tls_set_context(config.mqtt.ssl_context())
        subscriber.connect(config.mqtt.host, config.mqtt.port)
        subscriber.loop_start()
        console.print(
            f"[bold]SmartEye demo[/] — RTSP site camera at {camera.url('/cam1')}, broker {broker_url}, "
            f"events on {events_topic(prefix, config.node, ANY)}, alerts on {alerts_topic(prefix, config.node, ANY)}. "
            "Ctrl-C to stop."
        )
        console.print(f"[bold]ground station[/]: {station.url}  login [bold]{DEMO_USER}[/] / [bold]{password}[/] "
                      f"(timeline, live wall {station.url}/live, health, pilot map)")  # fmt: skip
        console.print(f"[bold]simulated copter[/] {DEMO_VEHICLE} (MAVLink tcp:127.0.0.1:{copter_port}, as ArduCopter "
                      "SITL): take off on the pilot map, then 'Look at a point' or an alert's 'Send a drone "
                      "to look'")  # fmt: skip
        console.print("loading the model…")
        node = build_node(config)
        node.start()
        drone.start()
        if node.video is not None and node.video.whep_url:
            console.print(f"[bold]annotated video[/]: WHEP {node.video.whep_url}/<stream> on the edge; the drone's "
                          f"stream as MPEG-TS on udp://127.0.0.1:{DEMO_MPEGTS_PORT} (QGroundControl, VLC)")  # fmt: skip
        deadline = time.monotonic() + duration if duration else None
        with Live(board.render(broker_url), console=console, refresh_per_second=2) as live:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.5)
                live.update(board.render(broker_url))
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.stop()
        if subscriber is not None:
            subscriber.loop_stop()
            subscriber.disconnect()
        drone.stop()
        camera.stop()
        station.stop()
        copter.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        broker.close()


def _geo_text(event: DetectionEvent) -> str:
    if event.geo is not None:
        error = f" ±{event.geo.uncertainty_m:.0f} m" if event.geo.uncertainty_m is not None else ""
        return f"{event.geo.lat:.5f}, {event.geo.lon:.5f}{error}"
    return event.geo_status.value if event.geo_status else ""


def _free_or_any(port: int, key: str) -> int:
    """`port` when nothing listens on it, else any free port (a second demo, or a real service), with a warning
    naming the port and the config key."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return port
    chosen = free_tcp_port()
    log.warning("%s: port %d is taken; using %d instead", key, port, chosen)
    return chosen


def _square_around(lat: float, lon: float, half_m: float) -> list[tuple[float, float]]:
    """UL, UR, LR, LL corners of a north-up square on the ground (the synthetic drone's geofence)."""
    dlat = math.degrees(half_m / 6_378_137.0)
    dlon = dlat / math.cos(math.radians(lat))
    return [(lat + dlat, lon - dlon), (lat + dlat, lon + dlon), (lat - dlat, lon + dlon), (lat - dlat, lon - dlon)]


def _centroid(points: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _ground_station(mqtt_settings: dict[str, Any], workdir: Path, copter_url: str) -> GroundStation:
    """The demo's ground station on port 8080 when free, with a throw-away SQLite store and the copter to send."""
    port = _free_or_any(DEFAULT_WEB_PORT, "web.port")
    config = GroundStationConfig.model_validate(
        {
            "mqtt": {**mqtt_settings, "client_id": f"smarteye-demo-ground-{secrets.token_hex(4)}"},
            "session_expiry_s": 60,  # a demo leaves no long-lived session on a shared broker
            "database_url": f"sqlite:///{workdir / 'ground-station.sqlite'}",
            "web": {"port": port},
            "command": {"vehicles": [{"name": DEMO_VEHICLE, "url": copter_url}]},
        }
    )
    return GroundStation(config)
