"""The web UI in headless Chromium (selenium): login, live timeline + event detail with snapshot,
health, pilot map and users pages.

The browser drives the real ground station the product runs (`ground_station.service.GroundStation`:
aggregator, SQLite store, API and the one page server with its security headers), fed over a real
Mosquitto: `push(message)` publishes an edge message (event/status/availability/telemetry) and waits
until it is stored and pushed to the browsers over /api/live; `add_snapshot(event_id, jpeg)` sends an
event's snapshot; `accounts` holds one user per role. Screenshots go to test-artifacts/.
"""

import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from smarteye.wire.messages import EventType, GeoPosition, GeoStatus, NodeAvailability, StreamStatus, Telemetry
from smarteye.wire.telemetry import SensorMetadata, VehicleState
from tests.support.browser import chromium, css, js_errors, shot, visible, wait
from tests.support.factories import make_event

SITE = (38.2456, -77.3537)  # where the real aerial KLV sample flies
ROLES = ("admin", "pilot", "supervisor", "viewer")


# ============================================================================= messages (validated)
def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m`/`east_m` metres from (lat, lon) (flat earth, fine over a few km)."""
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


def event_msg(
    event_id: str,
    seq: int = 0,
    kind: str = "new",
    *,
    node: str = "site-a",
    stream: str = "site-cam",
    label: str = "person",
    score: float = 0.82,
    box: tuple[float, float, float, float] = (612, 230, 654, 343),
    size: tuple[int, int] = (768, 576),
    t: float | None = None,
    geo: tuple[float, float, float | None] | None = None,
    track_id: int = 1,
) -> dict[str, Any]:
    t = time.time() - 0.3 if t is None else t  # published before the ground station receives it
    position = None
    if geo is not None:
        position = GeoPosition(lat=geo[0], lon=geo[1], uncertainty_m=geo[2], source="mavlink", telemetry_age_s=0.04)
    event = make_event(
        event_id, seq, node=node, stream=stream, label=label, score=score, capture_time=t, type=EventType(kind),
        track_id=track_id, box=box, size=size, first_seen=t - 2.0 * seq, geo=position,
        geo_status=(GeoStatus.OK if geo else GeoStatus.NO_TELEMETRY) if node.startswith("drone") else None,
        detect_delay_s=0.045, publish_delay_s=0.052, model="yolov8n.pt",
    )  # fmt: skip
    return event.model_dump(mode="json")


def status_msg(node: str, stream: str, state: str, reason: str | None = None, **kw: Any) -> dict[str, Any]:
    live = state == "live"
    now = time.time()
    values: dict[str, Any] = {
        "url": f"rtsp://***@10.0.0.7/{stream}",
        "source_kind": "rtsp",
        "width": 1280,
        "height": 720,
        "fps": 25.0 if live else 0.0,
        "processed_fps": 8.4 if live else 0.0,
        "frames": 91_234,
        "processed": 30_410,
        "dropped": 60_824,
        "reconnects": 0 if live else 3,
        "latency_ms": 48.0 if live else None,
        "last_frame_time": now - (0.1 if live else 42.0),
        "time": now,
        **kw,
    }
    return StreamStatus(node=node, stream=stream, state=state, reason=reason, **values).model_dump(mode="json")


def availability_msg(node: str, state: str) -> dict[str, Any]:
    return NodeAvailability(node=node, state=state, time=time.time()).model_dump(mode="json")


def mavlink_telemetry(node: str, stream: str, lat: float, lon: float, heading: float, **kw: Any) -> dict[str, Any]:
    now = time.time()
    ahead = [offset(lat, lon, *rot(heading, n, e)) for n, e in ((160, -70), (160, 70), (45, 30), (45, -30))]
    vehicle = VehicleState(
        system_id=1,
        time=now,
        lat=lat,
        lon=lon,
        alt_amsl_m=182.4,
        alt_rel_m=120.0,
        roll_deg=1.5,
        pitch_deg=-3.0,
        yaw_deg=heading,
        heading_deg=heading,
        groundspeed_mps=11.2,
        climb_mps=0.3,
        battery_voltage_v=22.6,
        battery_remaining_pct=64,
        flight_mode="AUTO",
        armed=True,
        vehicle_type="QUADROTOR",
        autopilot="ARDUPILOTMEGA",
        gps_fix_type=3,
        satellites=14,
        h_acc_m=0.9,
        gimbal_pitch_deg=-35.0,
        gimbal_yaw_deg=0.0,
        gimbal_yaw_frame="vehicle",
        camera_hfov_deg=70.0,
        camera_vfov_deg=42.0,
        link_ok=True,
        last_heartbeat=now,
        **kw,
    )
    return Telemetry(
        node=node, stream=stream, source="mavlink", geo_status="ok", vehicle=vehicle, footprint=ahead, time=now
    ).model_dump(mode="json")


def klv_telemetry(node: str, stream: str, lat: float, lon: float, heading: float) -> dict[str, Any]:
    corners = [offset(lat, lon, *rot(heading, n, e)) for n, e in ((260, -120), (260, 120), (150, 90), (150, -90))]
    sensor = SensorMetadata(
        standard="ST0601",
        time=time.time(),
        platform_heading_deg=heading,
        platform_pitch_deg=0.5,
        platform_roll_deg=-2.0,
        sensor_lat=lat,
        sensor_lon=lon,
        sensor_alt_m=610.0,
        hfov_deg=12.5,
        vfov_deg=7.0,
        sensor_rel_az_deg=90.0,
        sensor_rel_el_deg=-20.0,
        slant_range_m=1450.0,
        corners=corners,
    )
    return Telemetry(
        node=node, stream=stream, source="klv", geo_status="ok", sensor=sensor, footprint=corners, time=time.time()
    ).model_dump(mode="json")


def rot(heading_deg: float, forward: float, right: float) -> tuple[float, float]:
    """(north, east) metres of a point `forward`/`right` of a platform heading `heading_deg`."""
    a = math.radians(heading_deg)
    return forward * math.cos(a) - right * math.sin(a), forward * math.sin(a) + right * math.cos(a)


# ============================================================================ the ground station
@dataclass
class GroundStation:
    url: str
    push: Callable[[dict[str, Any]], None]
    add_snapshot: Callable[[str, bytes], None]
    accounts: dict[str, tuple[str, str]]


@contextmanager
def station_over_mqtt(broker, database: Path, **web: Any) -> Iterator[GroundStation]:
    """The real ground station on `database`, fed over `broker` by each node with its own login, with one user
    per role."""
    from ground_station.auth.roles import Role
    from ground_station.config import GroundStationConfig
    from ground_station.service import GroundStation as Station
    from smarteye.sim.broker import STATION_USER
    from smarteye.sim.ports import free_tcp_port
    from tests.support.ingest import Publisher

    station = Station(
        GroundStationConfig.model_validate(
            {"mqtt": {**broker.client_settings(STATION_USER), "client_id": f"gs-ui-{secrets.token_hex(4)}"},
             "database_url": f"sqlite:///{database}",
             "web": {"port": free_tcp_port(), "secure_cookies": False, **web}}
        )
    )  # fmt: skip
    accounts = {role: (f"{role}1", f"{role}-password-1") for role in ROLES}
    for role, (name, password) in accounts.items():
        station.accounts.create_user(name, password, Role(role))
    station.start()
    publisher = Publisher(broker, "smarteye/v1")
    where: dict[str, tuple[str, str]] = {}  # event_id → (node, stream), for the snapshot topic

    def send(topic: str, payload: bytes, retain: bool = False) -> None:
        publisher.publish(topic, payload, retain=retain)
        publisher.flush(5)
        assert station.aggregator.wait_idle(10), "the aggregator did not store what was sent"

    def push(message: dict[str, Any]) -> None:
        kind, node = message["kind"], message["node"]
        if kind == "event":
            where[message["event_id"]] = (node, message["stream"])
        topic = {"event": f"events/{message.get('stream')}", "status": f"status/{message.get('stream')}",
                 "telemetry": f"telemetry/{message.get('stream')}", "availability": "availability"}[kind]  # fmt: skip
        send(f"{node}/{topic}", json.dumps(message).encode(), retain=kind in ("status", "availability"))

    def add_snapshot(event_id: str, jpeg: bytes) -> None:
        node, stream = where[event_id]
        send(f"{node}/snapshots/{stream}/{event_id}", jpeg)

    try:
        yield GroundStation(station.url, push, add_snapshot, accounts)
    finally:
        publisher.close()
        station.stop()


@pytest.fixture(scope="module")
def broker():
    from smarteye.sim.broker import MosquittoBroker

    mosquitto = MosquittoBroker.secured(["site-a", "site-b", "drone-1", "drone-2"])
    mosquitto.start()
    yield mosquitto
    mosquitto.close()


@pytest.fixture(scope="module")
def ground_station_url(broker, tmp_path_factory):
    """The ground station as the product runs it, offline (no map tiles configured)."""
    with station_over_mqtt(broker, tmp_path_factory.mktemp("ground") / "ground.sqlite") as station:
        yield station


@contextmanager
def tile_server():
    """A local stand-in for a slippy-map tile server (the tests never touch the internet)."""
    import http.server

    import cv2
    import numpy as np

    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            z, x, y = (int(v) for v in self.path.removesuffix(".png").strip("/").split("/"))
            img = np.full((256, 256, 3), (214, 232, 222) if (x + y) % 2 else (226, 238, 244), np.uint8)
            cv2.rectangle(img, (0, 0), (255, 255), (150, 160, 170), 1)
            cv2.putText(img, f"{z}/{x}/{y}", (12, 132), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (90, 100, 110), 2)
            body = cv2.imencode(".png", img)[1].tobytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# ===================================================================================== fixtures
@pytest.fixture(scope="module")
def jpeg(media) -> bytes:
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(media("vtest.avi")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, frame = cap.read()
    cap.release()
    assert ok, "could not read a frame of vtest.avi"
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def gs(ground_station_url: GroundStation, jpeg: bytes) -> GroundStation:
    """The ground station with some history: nodes and streams, 60 site-camera events, drone events."""
    g = ground_station_url
    for node in ("site-a", "drone-1"):
        g.push(availability_msg(node, "online"))
    g.push(availability_msg("site-b", "offline"))
    g.push(status_msg("site-a", "site-cam", "live"))
    g.push(status_msg("site-a", "parking", "live"))
    g.push(
        status_msg("drone-1", "aerial", "live", source_kind="udp", url="udp://0.0.0.0:5600", width=1920, height=1080)
    )
    g.push(status_msg("site-b", "gate", "failed", reason="file not found: /data/gate.mp4", source_kind="file"))
    t0 = time.time() - 3600
    for i in range(60):
        label = ("person", "car", "truck")[i % 3]
        eid = f"hist-{i:03d}"
        g.push(event_msg(eid, t=t0 + 50 * i, label=label, score=0.5 + (i % 5) / 10, track_id=100 + i))
        if i % 4 == 0:
            g.add_snapshot(eid, jpeg)
    for i in range(6):  # positioned detections from earlier in the flight: map history markers
        lat, lon = offset(*SITE, -120 + 25 * i, -160 + 20 * i)
        g.push(
            event_msg(
                f"geo-{i}",
                node="drone-1",
                stream="aerial",
                label=("person", "car")[i % 2],
                t=time.time() - 600 + i,
                geo=(lat, lon, 4.0 + 3 * i),
                box=(900, 500, 960, 640),
                size=(1920, 1080),
                track_id=200 + i,
            )
        )
    return g


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


# ====================================================================================== helpers


def login(driver, gs: GroundStation, role: str) -> None:
    user, password = gs.accounts[role]
    driver.get(gs.url + "/login")
    driver.delete_all_cookies()
    name = wait(driver, visible("#username"))
    name.clear()
    name.send_keys(user)
    css(driver, "#password")[0].send_keys(password)
    css(driver, "#login-submit")[0].click()
    wait(driver, lambda d: urlparse(d.current_url).path == "/timeline", message="login did not land on the timeline")
    wait(driver, visible("#nav-user", user))


def open_page(driver, gs: GroundStation, page: str, *, live: bool = True) -> None:
    driver.get(f"{gs.url}/{page}")
    if live:
        wait(driver, visible('#live-state[data-state="open"]'), message="the live WebSocket did not connect")


def click(driver, selector: str, attempts: int = 5) -> None:
    """Click an element of a view that redraws itself (the map): find it again if it was replaced."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(attempts):
        try:
            css(driver, selector)[0].click()
            return
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)


def marker_ids(driver) -> set[str]:
    # One read: the map redraws live, so elements found in one call may be gone by the next.
    script = "return [...document.querySelectorAll('#map g.marker')].map((m) => m.dataset.eventId)"
    return set(driver.execute_script(script))


def painted_near(driver, selector: str, rgb: tuple[int, int, int], radius: int = 20) -> int:
    """Screen pixels of colour `rgb` within `radius` px of where the element `selector` is anchored:
    proof that the map drew it, not only that the element exists."""
    import cv2
    import numpy as np

    script = "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.left, r.top];"
    x, y = (round(v) for v in driver.execute_script(script, selector))
    img = cv2.imdecode(np.frombuffer(driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    area = img[max(0, y - radius) : y + radius, max(0, x - radius) : x + radius].astype(int)
    return int((np.abs(area - np.array(rgb[::-1])).max(axis=2) <= 8).sum())


def image_loaded(driver, element) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", element))


# ======================================================================================== tests
def test_login_errors_inline_then_lands_on_timeline(browser, gs):
    driver = browser
    driver.get(gs.url + "/timeline")
    wait(driver, lambda d: urlparse(d.current_url).path == "/login", message="no redirect to /login without a session")

    wait(driver, visible("#username")).send_keys("admin1")
    css(driver, "#password")[0].send_keys("not-the-password")
    css(driver, "#login-submit")[0].click()
    error = wait(driver, visible("#login-error"))
    assert "Wrong username or password" in error.text
    assert urlparse(driver.current_url).path == "/login"
    shot(driver, "login-error")

    login(driver, gs, "admin")
    assert css(driver, "#nav-role")[0].text.lower() == "admin"
    assert [a.text for a in css(driver, ".nav-links a")] == [
        "Timeline",
        "Alerts",
        "Live",
        "Health",
        "Map",
        "Zones & rules",
        "Users",
    ]
    assert not js_errors(driver)


def test_timeline_pages_and_shows_live_event_with_snapshot(browser, gs, jpeg):
    driver = browser
    login(driver, gs, "supervisor")
    wait(driver, lambda d: len(css(d, "#events > li")) == 50, message="first page of 50 events not shown")
    older = wait(driver, visible("#older"))
    older.click()
    wait(driver, lambda d: len(css(d, "#events > li")) == 66, message="'older' did not load the next page")
    assert not css(driver, "#older")[0].is_displayed()  # nothing older left
    thumbs = css(driver, "#events img.thumb")
    assert thumbs and all(t.get_attribute("src").endswith("/snapshot") for t in thumbs)

    open_page(driver, gs, "timeline")
    wait(driver, lambda d: len(css(d, "#events > li")) == 50)
    driver.execute_script("window.__not_reloaded = true")
    lat, lon = offset(*SITE, 35, 20)
    gs.push(event_msg("live-1", node="drone-1", stream="aerial", geo=(lat, lon, 3.2), track_id=7))
    gs.add_snapshot("live-1", jpeg)  # the edge sends the snapshot right after its `new` event
    wait(
        driver,
        lambda d: css(d, "#events > li")[0].get_attribute("data-event-id") == "live-1",
        5,
        "the pushed event did not appear at the top",
    )
    assert driver.execute_script("return window.__not_reloaded === true"), "the page reloaded"
    first = css(driver, "#events > li")[0]
    assert "person" in first.text and "drone-1 / aerial" in first.text and "± 3.2 m" in first.text
    wait(driver, lambda d: image_loaded(d, css(d, "#events > li img.thumb")[0]), message="thumbnail not loaded")
    shot(driver, "timeline")

    first.find_element("css selector", "button").click()
    snap = wait(driver, visible("#detail-snapshot img"))
    wait(driver, lambda d: image_loaded(d, snap), message="snapshot not loaded")
    box = css(driver, "#detail-snapshot .snap-box")[0]
    assert box.value_of_css_property("left").endswith("px")
    frame = css(driver, "#detail-snapshot")[0]
    left = float(box.value_of_css_property("left")[:-2]) / frame.size["width"]
    assert abs(left - 612 / 768) < 0.01, left
    assert f"{lat:.6f}, {lon:.6f}" in css(driver, "#detail-geo")[0].text
    assert css(driver, "#detail-latency")[0].text == "52 ms"
    # An update of the open event refreshes the detail.
    gs.push(
        event_msg("live-1", 1, "update", node="drone-1", stream="aerial", geo=(lat, lon, 2.5), score=0.9, track_id=7)
    )
    wait(driver, lambda d: len(css(d, "#detail-messages tbody tr")) == 2, message="the detail did not refresh")
    wait(driver, visible("#detail-snapshot img"))
    time.sleep(0.3)  # let the refreshed snapshot paint before the screenshot
    shot(driver, "event-detail")

    driver.set_window_size(820, 1180)  # tablet, portrait: the detail becomes a drawer
    driver.refresh()  # the URL keeps the filters and the open event
    wait(driver, lambda d: image_loaded(d, wait(d, visible("#detail-snapshot img"))), message="no detail after reload")
    time.sleep(0.3)
    shot(driver, "event-detail-tablet")
    css(driver, "#detail-close")[0].click()
    time.sleep(0.2)
    shot(driver, "timeline-tablet")
    driver.set_window_size(1366, 900)
    assert not js_errors(driver)


def test_timeline_filters_apply_to_history_and_live_events(browser, gs):
    driver = browser
    login(driver, gs, "viewer")
    driver.get(gs.url + "/timeline?node=site-a&label=car&min_score=0.7")
    wait(driver, visible('#live-state[data-state="open"]'))
    wait(driver, lambda d: css(d, "#events > li"), message="no filtered events")
    rows = css(driver, "#events > li")
    assert len(rows) == 12, len(rows)  # 20 site-a cars, 12 of them scoring ≥ 0.7
    assert {r.find_element("css selector", ".ev-label").text for r in rows} == {"car"}
    assert all("site-a / site-cam" in r.text for r in rows)
    assert css(driver, "#f-label")[0].get_attribute("value") == "car"
    assert css(driver, "#f-node")[0].get_attribute("value") == "site-a"
    gs.push(event_msg("filtered-out", label="person", score=0.95, track_id=401))
    gs.push(event_msg("low-score", label="car", score=0.5, track_id=402))
    gs.push(event_msg("kept", label="car", score=0.91, track_id=403))
    wait(driver, lambda d: css(d, "#events > li")[0].get_attribute("data-event-id") == "kept", 5)
    ids = {r.get_attribute("data-event-id") for r in css(driver, "#events > li")}
    assert not ids & {"filtered-out", "low-score"}
    assert not js_errors(driver)


def test_health_shows_reconnecting_stream_reason(browser, gs):
    driver = browser
    login(driver, gs, "viewer")
    open_page(driver, gs, "health")
    wait(driver, visible('[data-node="site-a"] tr[data-stream="parking"][data-state="live"]'))
    reason = "RTSP connect failed: [Errno 111] Connection refused (rtsp://***@10.0.0.7/parking)"
    gs.push(status_msg("site-a", "parking", "reconnecting", reason=reason))
    row = wait(driver, visible('[data-node="site-a"] tr[data-stream="parking"][data-state="reconnecting"]'), 5)
    assert reason in row.text and "reconnecting" in row.text.lower()
    live_row = css(driver, '[data-node="site-a"] tr[data-stream="site-cam"]')[0]
    assert "25.0 / 8.4" in live_row.text and "48 ms" in live_row.text
    assert "offline" in css(driver, '[data-node="site-b"]')[0].text.lower()
    assert "file not found" in css(driver, '[data-node="site-b"] tr[data-stream="gate"]')[0].text
    shot(driver, "health")
    assert not js_errors(driver)


def test_map_shows_drones_tracks_footprints_and_markers(browser, gs, jpeg):
    driver = browser
    login(driver, gs, "pilot")
    open_page(driver, gs, "map")
    history = {f"geo-{i}" for i in range(6)}
    wait(driver, lambda d: history <= marker_ids(d), message="history markers (events with geo) not drawn")

    start = offset(*SITE, -260, -240)
    for i in range(15):  # a drone flying north-east, then a KLV platform further out
        lat, lon = offset(*start, 12 * i, 12 * i)
        gs.push(mavlink_telemetry("drone-1", "aerial", lat, lon, 45.0))
    gs.push(klv_telemetry("drone-2", "klv-cam", *offset(*SITE, 150, -420), 80.0))
    for i, (forward, right, unc) in enumerate(((80, -20, 2.5), (120, 35, 6.0), (140, -40, None))):
        n, e = rot(45.0, forward, right)  # inside the drone's camera footprint
        gs.push(
            event_msg(f"map-{i}", node="drone-1", stream="aerial", geo=(*offset(lat, lon, n, e), unc), track_id=300 + i)
        )
        gs.add_snapshot(f"map-{i}", jpeg)

    wait(
        driver,
        lambda d: css(d, '#map [data-drone="drone-1/aerial"]') and css(d, '#map [data-drone="drone-2/klv-cam"]'),
        message="drones not drawn",
    )
    wait(driver, lambda d: {"map-0", "map-1", "map-2"} <= marker_ids(d), message="live markers not drawn")
    assert css(driver, '#map [data-track="drone-1/aerial"]'), "no track"
    assert css(driver, '#map [data-footprint="drone-1/aerial"]') and css(
        driver, '#map [data-footprint="drone-2/klv-cam"]'
    )
    assert css(driver, "#scale-label")[0].text.endswith("m")
    drone_blue = (0x1F, 0x63, 0xD6)  # the first drone's colour: its heading arrow is drawn in it, opaque
    assert painted_near(driver, '#map [data-drone="drone-1/aerial"]', drone_blue) > 40, "the drone is not drawn"
    wait(driver, visible("#hud-alt-rel", "120.0 m"))
    assert css(driver, "#hud-heading")[0].text == "45° NE"
    assert css(driver, "#hud-mode")[0].text == "AUTO" and css(driver, "#hud-armed")[0].text == "ARMED"
    assert "11.2 m/s" in css(driver, "#hud-speed")[0].text
    time.sleep(0.4)
    shot(driver, "map")

    # The KLV platform: what KLV has, "—" for what only MAVLink knows.
    from selenium.webdriver.support.ui import Select

    Select(css(driver, "#drone-select")[0]).select_by_value("drone-2/klv-cam")
    wait(driver, visible("#hud-alt-amsl", "610.0 m"))
    assert css(driver, "#hud-alt-rel")[0].text == "—" and css(driver, "#hud-speed")[0].text == "—"
    assert css(driver, "#hud-heading")[0].text == "80° E"

    # The object's fused position (edge/geo/fusion.py): its 1-sigma circle shrinks as fixes agree.
    def area(d) -> float:
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(5):  # the map redraws the marker as messages arrive: a found element can go stale
            try:
                found = css(d, '#map g.marker[data-event-id="map-1"] circle.marker-area')
                return float(found[0].get_attribute("r")) if found else 0.0
            except StaleElementReferenceException:
                continue
        return 0.0

    for seq, sigma in ((1, 20.0), (2, 4.0)):
        message = event_msg("map-1", seq, "update", node="drone-1", stream="aerial",
                            geo=(*offset(lat, lon, *rot(45.0, 120, 35)), 6.0), track_id=301)  # fmt: skip
        message["geo_fused"] = {**message["geo"], "uncertainty_m": sigma}
        gs.push(message)
        if seq == 1:
            wait(driver, lambda d: area(d) > 0, message="the fused circle")
            wide = area(driver)
    wait(driver, lambda d: 0 < area(d) < wide, message="the fused circle did not shrink")

    # Click a detection on the map → its detail with the snapshot.
    click(driver, '#map g.marker[data-event-id="map-0"] circle:last-of-type')
    snap = wait(driver, visible("#detail-snapshot img"))
    wait(driver, lambda d: image_loaded(d, snap), message="snapshot not loaded")
    assert "map-0" in css(driver, "#detail")[0].text
    time.sleep(0.3)
    shot(driver, "map-detail")
    # Offline by default (no tiles_url): every request of the page went to the ground station.
    requests = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert requests and all(r.startswith(gs.url + "/") for r in requests), requests
    assert not js_errors(driver)


def test_map_draws_configured_tiles_under_the_data(browser, broker, tmp_path):
    """A station configured with `web.tiles_url` serves it to the map (and allows its host in the CSP):
    the map draws slippy-map tiles aligned with its data."""
    driver = browser
    with (
        tile_server() as tiles_url,
        station_over_mqtt(
            broker,
            tmp_path / "tiles.sqlite",
            tiles_url=f"{tiles_url}/{{z}}/{{x}}/{{y}}.png",
            tiles_attribution="test tiles",
        ) as tiled,
    ):
        login(driver, tiled, "pilot")
        open_page(driver, tiled, "map")
        start = offset(*SITE, -100, -80)
        for i in range(5):
            lat, lon = offset(*start, 12 * i, 12 * i)
            tiled.push(mavlink_telemetry("drone-1", "aerial", lat, lon, 45.0))
        wait(driver, visible("#hud-position", f"{lat:.6f}, {lon:.6f}"), message="the last position is not shown")
        read = """const drone = document.querySelector('#map [data-drone="drone-1/aerial"]');
            const tiles = [...document.querySelectorAll("#map img.leaflet-tile")];
            if (!drone || !tiles.length || !tiles.every((t) => t.complete && t.naturalWidth > 0)) return null;
            const at = drone.getBoundingClientRect();
            return [[at.left, at.top], tiles.map((t) => {
              const box = t.getBoundingClientRect();
              return [t.getAttribute("src"), box.left, box.top, box.width, box.height];
            })];"""

        def settled(d):  # every tile loaded (the CSP lets the configured host through), of one zoom level
            found = d.execute_script(read)  # one read: the map may move between two
            return found if found and len({src.rsplit("/", 3)[1] for src, *_ in found[1]}) == 1 else None

        (dx, dy), images = wait(driver, settled, message="tiles not loaded")
        tiles = {src: box for src, *box in images}
        z = int(next(iter(tiles)).removeprefix(tiles_url).split("/")[1])
        n = 2**z
        tx = int((lon + 180) / 360 * n)
        ty = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        x, y, w, h = tiles[f"{tiles_url}/{z}/{tx}/{ty}.png"]
        assert x <= dx <= x + w and y <= dy <= y + h, "the drone is not on the tile of its position"
        drone_blue = (0x1F, 0x63, 0xD6)
        assert painted_near(driver, '#map [data-drone="drone-1/aerial"]', drone_blue) > 40, "no drone over the tiles"
        assert 128 <= w <= 512, w  # tiles drawn near their native size
        assert css(driver, "#attribution")[0].text == "test tiles"
        shot(driver, "map-tiles")
        assert not js_errors(driver)
        driver.get("about:blank")  # leave before this station stops: no reconnect errors for the next test


def test_users_page_admin_manages_and_viewer_is_refused(browser, gs):
    driver = browser
    login(driver, gs, "admin")
    open_page(driver, gs, "users", live=False)
    wait(driver, visible('#users-table tr[data-user="viewer1"]'))
    css(driver, "#nu-name")[0].send_keys("observer")
    css(driver, "#nu-password")[0].send_keys("observer-password")
    from selenium.webdriver.support.ui import Select

    Select(css(driver, "#nu-role")[0]).select_by_value("supervisor")
    css(driver, "#user-form button[type=submit]")[0].click()
    row = wait(driver, visible('#users-table tr[data-user="observer"]'))
    assert Select(row.find_element("css selector", "select")).first_selected_option.text == "supervisor"
    Select(row.find_element("css selector", "select")).select_by_value("pilot")
    wait(driver, visible("#notice", "observer is now pilot"))
    css(driver, '#users-table tr[data-user="observer"] button')[1].click()  # Disable
    wait(driver, visible('#users-table tr[data-user="observer"].disabled'))

    css(driver, "#nt-name")[0].send_keys("control-room dashboard")
    css(driver, "#token-form button[type=submit]")[0].click()
    token = wait(driver, visible("#new-token"))
    assert token.get_attribute("value").startswith("se_")
    wait(driver, lambda d: "control-room dashboard" in css(d, "#tokens-table")[0].text)
    shot(driver, "users")
    assert not js_errors(driver)

    login(driver, gs, "viewer")
    assert "Users" not in [a.text for a in css(driver, ".nav-links a")]
    open_page(driver, gs, "users", live=False)
    refused = wait(driver, visible("#forbidden"))
    assert "Not allowed" in refused.text
    assert not css(driver, "#users-content")[0].is_displayed()
    shot(driver, "users-forbidden")

    open_page(driver, gs, "map")  # a viewer sees detections but no telemetry
    wait(driver, visible("#hud-note", "may not see drone telemetry"))
    assert not js_errors(driver)
    css(driver, "#logout")[0].click()
    wait(driver, lambda d: urlparse(d.current_url).path == "/login")


def test_demo_runs_the_whole_system_with_the_drone_on_the_pilot_map(browser, media, tmp_path):
    """`smarteye demo`: the terminal shows live and geolocated events, the printed ground-station URL and
    login work, and the pilot map shows the simulated drone with its detections as markers."""
    import os
    import re
    import subprocess

    from tests.support.edge_process import smarteye_command

    for name in ("vtest.avi", "intel_car-detection.mp4", "kwiver_aphill_short.ts"):
        media(name)  # skips with the reason when assets are absent
    from edge.assets import cache_dir

    # A fresh HOME (no state of earlier runs), but this machine's model exports: exporting the model on
    # the demo's first run is tested by tests/e2e/test_first_run.py, and would take this test's minute here.
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1", "COLUMNS": "200",
           "SMARTEYE_CACHE": str(cache_dir())}  # fmt: skip
    proc = subprocess.Popen([*smarteye_command(), "demo", "--duration", "75"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        intro = ""
        for line in proc.stdout:  # the intro comes within seconds
            intro += line
            found = re.search(r"ground station: (http://\S+)\s+login (\S+) / (\S+)", line)
            if found:
                break
        assert found, intro
        url, user, password = found.groups()
        station = GroundStation(url, lambda m: None, lambda e, j: None, {"admin": (user, password)})
        login(browser, station, "admin")
        browser.get(url + "/map")
        drone = '#map [data-drone="demo-edge/drone"]'
        wait(browser, lambda d: css(d, drone), timeout=60, message="the simulated drone is not on the map")
        wait(browser, marker_ids, timeout=60, message="no geolocated detection on the map")
        # The sendable copter: its MAVLink link up and its position on the map, with the command card.
        wait(browser, lambda d: css(d, '[data-vehicle="copter1"]'), timeout=60, message="the demo copter")
        assert css(browser, "#cmd-takeoff"), "an admin may command the demo copter"
        time.sleep(1)
        shot(browser, "demo-map")
        assert not js_errors(browser)
        browser.get(url + "/live")  # the live wall: every stream of the demo, annotated, relayed by the station
        live_tiles = "return document.querySelectorAll('.tile[data-state=\"live\"]').length"
        wait(browser, lambda d: d.execute_script(live_tiles) >= 3, timeout=60, message="the 3 streams are not live")
        shot(browser, "demo-live")
        assert not js_errors(browser)
        screen, errors = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, errors
    assert "Traceback" not in errors
    assert "site-cam" in screen and "parking" in screen and "live" in screen, screen
    rows = [line for line in screen.splitlines() if "│ new" in line or "│ update" in line]  # the latest rows shown
    assert any("person" in row for row in rows) and any("car" in row for row in screen.splitlines()), screen
    # The simulated drone's detections are geolocated (aphill flight, Virginia: 38.2°N 77.3°W).
    located = screen[screen.index("latest ground positions") :].splitlines()
    assert any("drone" in row and "38.2" in row and "-77.3" in row and "±" in row for row in located), screen
    # The demo ships example rules on every stream: a new user sees alerts within its 75 s (site camera: people
    # crossing the walkway, a group, someone lingering on the square).
    shown = screen[screen.rindex("alerts (rules on each stream") : screen.rindex("latest ground positions")]
    assert any("site-cam" in row and ("start" in row or "update" in row or "end" in row) for row in
               shown.splitlines()), screen  # fmt: skip
