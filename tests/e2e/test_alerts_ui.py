"""The rules-and-alerts web UI in headless Chromium (selenium), against the real GroundStation the product runs
(aggregator, SQLite store, API, the one page server) over a real Mosquitto.

- The alerts page: first paint from the API, filters, a new alert arriving live with its snapshot, its clip
  played (`video.currentTime` advances), acknowledge and resolve by a supervisor (who and when, also for a
  viewer who has no buttons), webhook delivery failures and the audit log.
- The zones & rules page: a zone drawn on a stream's picture that the station refuses (self-intersecting:
  the field is named, nothing stored), then a zone and a line saved and pushed retained to the edge's topic,
  the version the edge reports shown live ("applied on edge", "edge refused"), a geofence drawn on the map.
- Notifications: a supervisor on a page without alerts gets a toast, a browser notification and a beep.
- Acceptance (issue 10, point 4): a real edge node on vtest.avi sends its video and status to the station; a
  supervisor draws a zone on a still of the live video and saves it; the edge acknowledges the version; the
  next alert carries it and appears live with its snapshot, and its clip plays.

Edge messages of the synthetic tests are validated wire models (tests/support) published as a node would.
Screenshots go to test-artifacts/ (alerts-*.png, rules-*.png).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import AlertClip, AlertState, StreamStatus, Telemetry, ZoneCounts
from smarteye.wire.rules import RuleKind, Severity
from smarteye.wire.telemetry import VehicleState
from smarteye.wire.topics import rules_topic
from tests.support.accounts import FAST_HASHER
from tests.support.alerts import clip_announcement, make_alert
from tests.support.browser import chromium, css, js_errors, shot, visible, wait
from tests.support.factories import make_event
from tests.support.ingest import Publisher, make_config
from tests.support.mqtt_recorder import MqttRecorder

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto")
PREFIX = "smarteye/v1"  # the edge's default: the real node of the acceptance test talks to this station too
EDGE_NODE = "gate-edge"  # that node (its login on the broker)
ROLES = ("admin", "supervisor", "viewer")
SITE = (38.2456, -77.3537)


# ============================================================================ the ground station
@dataclass
class Station:
    gs: Any  # ground_station.service.GroundStation
    url: str
    publisher: Publisher
    broker: MosquittoBroker
    accounts: dict[str, tuple[str, str]]

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        """Publish as a node would and wait until the station stored it (and pushed it live)."""
        self.publisher.publish(topic, payload, retain=retain)
        self.publisher.flush()
        assert self.gs.aggregator.wait_idle(10), "the aggregator did not store what was sent"

    def alert(self, alert: Any, snapshot: bytes | None = None) -> None:
        if snapshot is not None:  # evidence first, then the message announcing it, as nodes do
            self.send(f"{alert.node}/alert-snapshots/{alert.stream}/{alert.alert_id}", snapshot)
        self.send(f"{alert.node}/alerts/{alert.stream}", alert.model_dump_json())

    def status(self, node: str, stream: str, **fields: Any) -> None:
        now = time.time()
        status = StreamStatus(node=node, stream=stream, state="live", url=f"rtsp://cam/{stream}", source_kind="rtsp",
                              width=768, height=576, fps=10.0, processed_fps=10.0, frames=100, time=now,
                              last_frame_time=now, **fields)  # fmt: skip
        self.send(f"{node}/status/{stream}", status.model_dump_json(), retain=True)


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker.secured(["site", "drone-1", EDGE_NODE], prefix=PREFIX) as mosquitto:
        yield mosquitto


@pytest.fixture(scope="module")
def station(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    """The real ground station; its one webhook endpoint is down (nothing listens there): deliveries fail."""
    from ground_station.auth.roles import Role
    from ground_station.service import GroundStation
    from smarteye.sim.ports import free_tcp_port

    folder = tmp_path_factory.mktemp("alerts-ui")
    dead = f"http://127.0.0.1:{free_tcp_port()}/hooks/smarteye?token=hidden"
    config = make_config(
        broker, f"sqlite:///{folder / 'ground.sqlite'}", PREFIX, web={"port": free_tcp_port(), "secure_cookies": False},
        webhooks={"endpoints": [{"url": dead, "secret": "alerts-ui-test-secret"}], "max_attempts": 2,
                  "backoff_initial_s": 0.2},
    )  # fmt: skip
    gs = GroundStation(config, hasher=FAST_HASHER)
    accounts = {role: (f"{role}1", f"{role}-password-1") for role in ROLES}
    for role, (name, password) in accounts.items():
        gs.accounts.create_user(name, password, Role(role))
    gs.start()
    assert gs.aggregator.wait_ready(10)
    publisher = Publisher(broker, PREFIX)
    try:
        yield Station(gs, gs.url, publisher, broker, accounts)
    finally:
        publisher.close()
        gs.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    with chromium(tmp_path_factory.mktemp("chromium-alerts")) as driver:
        yield driver


# ======================================================================================== media
@pytest.fixture(scope="module")
def frames(media) -> list[Any]:
    """Two seconds of vtest.avi (10 fps, 768×576): real pictures for snapshots and clips."""
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(media("vtest.avi")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    out = []
    for _ in range(40):
        ok, frame = cap.read()
        assert ok, "could not read vtest.avi"
        out.append(frame)
    cap.release()
    return out


def jpeg_of(frame: Any, zone: list[tuple[float, float]] | None = None) -> bytes:
    """The picture as JPEG; with `zone`, drawn as the edge draws an alert's zone (outline, severity colour)."""
    import cv2
    import numpy as np

    picture = frame.copy()
    if zone:
        h, w = picture.shape[:2]
        points = np.array([(x * w, y * h) for x, y in zone], np.int32)
        cv2.polylines(picture, [points], True, (0, 140, 255), 3)
    return cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def mp4_of(frames: list[Any]) -> bytes:
    """The frames as an H.264 MP4 with its index first (a browser seeks it with Range requests)."""
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file: it needs a real one
        path = Path(folder) / "clip.mp4"
        _write_mp4(path, frames)
        return path.read_bytes()


def _write_mp4(path: Path, frames: list[Any]) -> None:
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for i, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


# ====================================================================================== helpers
def login(driver, station: Station, role: str) -> None:
    user, password = station.accounts[role]
    driver.get(station.url + "/login")
    driver.delete_all_cookies()
    name = wait(driver, visible("#username"))
    name.clear()
    name.send_keys(user)
    css(driver, "#password")[0].send_keys(password)
    css(driver, "#login-submit")[0].click()
    wait(driver, visible("#nav-user", user), message="login failed")


def open_page(driver, station: Station, path: str) -> None:
    driver.get(station.url + path)
    wait(driver, visible('#live-state[data-state="open"]'), message="the live WebSocket did not connect")


def row_ids(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#alerts > li')].map((li) => li.dataset.alertId)"
    )


def click_at(driver, selector: str, points: list[tuple[float, float]]) -> None:
    """Click at fractions (x, y) of an element's box, one after the other (drawing on the editor)."""
    from selenium.webdriver.common.action_chains import ActionChains

    element = css(driver, selector)[0]
    width, height = element.rect["width"], element.rect["height"]
    for x, y in points:
        ActionChains(driver).move_to_element_with_offset(element, x * width - width / 2, y * height - height / 2).click(
        ).perform()  # fmt: skip
        time.sleep(0.1)


def drag(driver, selector: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at `start`, move in steps, release at `end` (fractions of the element's box)."""
    from selenium.webdriver.common.action_chains import ActionChains

    element = css(driver, selector)[0]
    width, height = element.rect["width"], element.rect["height"]
    dx, dy = (end[0] - start[0]) * width / 4, (end[1] - start[1]) * height / 4
    chain = ActionChains(driver).move_to_element_with_offset(element, start[0] * width - width / 2,
                                                             start[1] * height - height / 2)  # fmt: skip
    chain.click_and_hold()
    for _ in range(4):
        chain.move_by_offset(dx, dy)
    chain.release().perform()


def set_field(driver, card: str, field: str, value: str) -> None:
    """Type into a field of a card of the rules side panel (the card is opened first)."""
    driver.execute_script("document.querySelector(arguments[0]).open = true", card)
    box = css(driver, f'{card} [data-field="{field}"]')[0]
    box.clear()
    box.send_keys(value)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)


def plays(driver, seconds: float = 1.0, timeout: float = 20.0) -> float:
    """Start the detail's clip and wait until it has played `seconds`; returns its duration."""
    driver.execute_script("const v = document.getElementById('detail-clip'); v.scrollIntoView({block: 'center'}); "
                          "v.muted = true; v.play();")  # fmt: skip
    wait(driver, lambda d: d.execute_script("return document.getElementById('detail-clip').currentTime") >= seconds,
         timeout, "the clip does not play")  # fmt: skip
    return float(driver.execute_script("return document.getElementById('detail-clip').duration"))


def flat(points: Any) -> list[float]:
    return [v for point in points for v in point]


def text_of(driver, selector: str) -> str | None:
    """The text of the first element matching `selector` as written (`.text` is as shown: badges upper-case)."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e && e.textContent", selector)


def image_loaded(driver, selector: str) -> bool:
    return bool(driver.execute_script("const i = document.querySelector(arguments[0]); return !!i && i.complete && "
                                      "i.naturalWidth > 0", selector))  # fmt: skip


# ================================================================================ alerts page
def test_alerts_page_lists_filters_shows_a_live_alert_with_snapshot_and_clip_and_records_supervision(
    browser, station: Station, frames
) -> None:
    driver = browser
    door = [(0.1, 0.55), (0.6, 0.5), (0.7, 0.95), (0.05, 0.95)]
    snapshot = jpeg_of(frames[0], door)
    station.status("site", "cam")
    t0 = time.time() - 600
    for i, (severity, rule, kind) in enumerate([(Severity.CRITICAL, "gate-enter", RuleKind.ENTER),
                                                (Severity.WARNING, "walkway-cross", RuleKind.CROSS),
                                                (Severity.INFO, "square-crowd", RuleKind.CROWD)]):  # fmt: skip
        history = make_alert(f"hist{i}", node="site", stream="cam", rule=rule, kind=kind, severity=severity,
                             start_time=t0 + 60 * i, objects=i + 1)  # fmt: skip
        station.alert(history, snapshot)

    login(driver, station, "supervisor")
    open_page(driver, station, "/alerts")
    wait(driver, lambda d: len(row_ids(d)) == 3, message="the three alerts are not listed")
    assert row_ids(driver) == ["hist2", "hist1", "hist0"]  # newest start first
    wait(driver, lambda d: all(image_loaded(d, f'#alerts li[data-alert-id="hist{i}"] img.thumb') for i in range(3)),
         message="the snapshots of the listed alerts do not load")  # fmt: skip

    # Filters: critical only, then back to all.
    for severity in ("warning", "info"):
        css(driver, f'#f-severity input[value="{severity}"]')[0].click()
    css(driver, '#filters button[type="submit"]')[0].click()
    wait(driver, lambda d: row_ids(d) == ["hist0"], message="the severity filter is not applied")
    assert "severity=critical" in driver.current_url
    css(driver, "#f-reset")[0].click()
    wait(driver, lambda d: len(row_ids(d)) == 3)

    # A new alert arrives live: listed on top without a reload, with its snapshot; a toast says so.
    driver.execute_script("window.__sameDocument = true")
    start = make_alert("live1", node="site", stream="cam", rule="gate-enter", severity=Severity.CRITICAL,
                       start_time=time.time() - 1, objects=2)  # fmt: skip
    station.alert(start, snapshot)
    wait(driver, lambda d: row_ids(d)[:1] == ["live1"], message="the live alert is not listed on top")
    wait(driver, visible('#toasts .toast[data-alert-id="live1"]'), message="no toast for the new alert")
    driver.execute_script(
        "document.querySelector(arguments[0]).click()", '#alerts li[data-alert-id="live1"] .event-btn'
    )  # fmt: skip (the live list re-renders)
    wait(driver, lambda d: image_loaded(d, "#detail-snapshot"), message="the alert's snapshot is not shown")
    assert "arrives a few seconds after" in wait(driver, visible("#detail-no-clip")).text
    objects = css(driver, "#detail-objects tbody tr")
    assert len(objects) == 2 and "person" in objects[0].text

    # Its clip arrives: the detail shows a <video> that plays it (HTTP Range from the clip route).
    mp4 = mp4_of(frames)
    station.send("site/clips/cam/live1", mp4)
    clip = AlertClip(start_time=start.start_time - 2, end_time=start.start_time + 2, bytes=len(mp4))
    station.alert(clip_announcement(start, clip))
    wait(driver, lambda d: css(d, "#detail-clip"), message="the clip did not appear in the detail")
    duration = plays(driver, 1.0)
    assert duration == pytest.approx(4.0, abs=0.3)
    assert driver.execute_script("return window.__sameDocument === true"), "the page was reloaded"
    shot(driver, "alerts-live-detail-clip")

    # Acknowledge (with a note for the audit log), then resolve: who and when, in the detail and the row.
    css(driver, "#supervise-note")[0].send_keys("on my way")
    css(driver, "#acknowledge")[0].click()
    wait(driver, visible("#detail-acknowledged", "supervisor1"), message="the acknowledgement is not shown")
    wait(driver, lambda d: text_of(d, '#alerts li[data-alert-id="live1"] .al-sup') == "ack · supervisor1")
    css(driver, "#resolve")[0].click()
    wait(driver, visible("#detail-resolved", "supervisor1"))
    assert not css(driver, "#acknowledge") and not css(driver, "#resolve")
    stored = station.gs.store.get_alert("live1")
    assert (stored.acked_by, stored.resolved_by) == ("supervisor1", "supervisor1")
    # An update of the situation keeps the supervision and refreshes the row and the detail live.
    station.alert(make_alert("live1", 1, AlertState.END, node="site", stream="cam", rule="gate-enter",
                             severity=Severity.CRITICAL, start_time=start.start_time, objects=2))  # fmt: skip
    wait(driver, lambda d: css(d, '#detail[data-state="end"]'), message="the end is not shown live")
    assert "supervisor1" in css(driver, "#detail-resolved")[0].text
    shot(driver, "alerts-resolved")

    # The webhook endpoint is down: the failures are visible, with their error, and can be retried.
    css(driver, "#tab-webhooks")[0].click()
    failed = wait(driver, visible('#wh-deliveries tr[data-state="failed"]'), 20, "no failed delivery listed")
    assert "Connect" in failed.text and "token" not in failed.text  # the URL's token is never shown
    assert "failed" in text_of(driver, "#webhook-failed")
    failed.find_element("css selector", "button").click()
    shot(driver, "alerts-webhooks")

    # The audit log: who acknowledged and resolved, with the note, and the retry.
    css(driver, "#tab-audit")[0].click()
    wait(driver, visible('#audit tr[data-action="alert.acknowledge"][data-target="live1"]', "on my way"))
    resolved = wait(driver, visible('#audit tr[data-action="alert.resolve"][data-target="live1"]', "supervisor1"))
    assert "on my way" not in resolved.text  # the note went with the acknowledgement only
    wait(driver, visible('#audit tr[data-action="webhook.retry"]', "supervisor1"))
    shot(driver, "alerts-audit")
    assert not js_errors(driver)

    # A viewer sees who did what and when, but has no buttons, no webhooks, no audit log, no bell.
    login(driver, station, "viewer")
    open_page(driver, station, "/alerts?alert=live1")
    wait(driver, visible("#detail-acknowledged", "supervisor1"))
    assert "supervisor1" in css(driver, "#detail-resolved")[0].text
    assert not css(driver, "#acknowledge") and not css(driver, "#supervise-note")
    assert not css(driver, "#tab-webhooks")[0].is_displayed() and not css(driver, "#tab-audit")[0].is_displayed()
    assert not css(driver, "#alert-bell")
    assert not js_errors(driver)


# ================================================================================= rules page
def test_rules_editor_names_the_refused_field_saves_pushes_and_shows_the_edge_version(
    browser, station: Station, frames
) -> None:
    driver = browser
    station.status("site", "gate")
    event = make_event("gate-ev", node="site", stream="gate", capture_time=time.time() - 5, size=(768, 576))
    station.send("site/events/gate", event.model_dump_json())
    station.send("site/snapshots/gate/gate-ev", jpeg_of(frames[5]))
    recorder = MqttRecorder(station.broker, rules_topic(PREFIX, "site", "gate"))
    try:
        login(driver, station, "supervisor")
        open_page(driver, station, "/rules?node=site&stream=gate")
        wait(driver, lambda d: css(d, '#frame[data-source="snapshot"]'), message="the stream's snapshot is not shown")
        assert "Nothing saved" in css(driver, "#sync")[0].text

        # A bow tie: the station refuses it naming the field; nothing is stored.
        css(driver, "#tool-zone")[0].click()
        click_at(driver, "#overlay", [(0.2, 0.5), (0.6, 0.9), (0.6, 0.5), (0.2, 0.9)])
        css(driver, "#finish")[0].click()
        wait(driver, lambda d: len(css(d, "#shapes .item")) == 1 and len(css(d, "#rules .item")) == 1)
        css(driver, "#save")[0].click()
        errors = wait(driver, visible("#field-errors"), message="the refusal is not shown")
        assert "zones[0]" in errors.text and "not simple" in errors.text, errors.text
        assert css(driver, '#shapes .item[data-path="zones.0"].invalid')
        assert station.gs.store.current_rules("site", "gate") is None
        shot(driver, "rules-refused")

        # A zone (click its first point to close it) and a line, people only, saved as v1.
        css(driver, "#revert")[0].click()
        wait(driver, lambda d: not css(d, "#shapes .item"))
        zone = [(0.05, 0.55), (0.95, 0.55), (0.95, 0.95), (0.05, 0.95)]
        css(driver, "#tool-zone")[0].click()
        click_at(driver, "#overlay", [*zone, zone[0]])
        wait(driver, lambda d: css(d, '#overlay .se-zone.selected .se-vertex[data-index="0"]'))
        drag(driver, "#overlay", zone[0], (0.1, 0.5))  # the new zone is selected: its first corner moves
        zone[0] = (0.1, 0.5)
        css(driver, "#tool-line")[0].click()
        click_at(driver, "#overlay", [(0.1, 0.45), (0.9, 0.45)])
        wait(driver, lambda d: len(css(d, "#shapes .item")) == 2 and len(css(d, "#rules .item")) == 2)
        set_field(driver, '#shapes .item[data-path="zones.0"]', "labels", "person")
        set_field(driver, '#rules .item[data-path="rules.0"]', "cooldown_s", "5")
        assert css(driver, "#save")[0].text == "Save as v1"
        css(driver, "#save")[0].click()
        wait(driver, visible("#saved-notice", "Saved v1"), message="the save is not confirmed")
        wait(driver, lambda d: css(d, '#sync[data-saved-version="1"]'))
        assert "edge still runs no rules" in css(driver, "#sync")[0].text
        shot(driver, "rules-saved")

        # What the edge gets: the retained RulesConfig on the stream's rules topic, the clicks in fractions.
        recorder.wait_for(lambda: any(m.data.get("rules", {}).get("version") == 1 for m in recorder.snapshot()), 10,
                          "the retained rules v1")  # fmt: skip
        pushed = next(m.data for m in recorder.snapshot() if m.data["rules"]["version"] == 1)
        assert pushed["author"] == "supervisor1" and pushed["stream"] == "gate"
        [saved_zone] = pushed["rules"]["zones"]
        assert saved_zone["filter"]["labels"] == ["person"] and saved_zone["space"] == "image"
        assert flat(saved_zone["points"]) == pytest.approx(flat(zone), abs=0.01)
        [line] = pushed["rules"]["lines"]
        assert flat(line["points"]) == pytest.approx([0.1, 0.45, 0.9, 0.45], abs=0.01)
        kinds = {(r["kind"], r["zone"] or r["line"], r["cooldown_s"]) for r in pushed["rules"]["rules"]}
        assert kinds == {("enter", "zone-1", 5.0), ("cross", "line-1", 30.0)}

        # The edge reports the version it runs: shown live.
        station.status("site", "gate", rules_version=1)
        wait(driver, lambda d: css(d, '#sync[data-in-sync="true"]'), message="the edge's version is not shown")
        assert "applied on edge: v1" in css(driver, "#sync")[0].text

        # What the rules count, as the edge reports it: objects in the zone over time, the line's crossings.
        for i, (people, crossed_in) in enumerate([(1, 0), (3, 2), (2, 3)]):
            counts = ZoneCounts(node="site", stream="gate", zones={"zone-1": people},
                                lines={"line-1": {"in": crossed_in, "out": 1}}, rules_version=1,
                                time=time.time() - 20 + 10 * i)  # fmt: skip
            station.send("site/counts/gate", counts.model_dump_json())
        wait(driver, lambda d: css(d, '#counts .count[data-zone="zone-1"][data-now="2"]'), message="no zone counts")
        assert "in 3 · out 1" in css(driver, '#counts .count[data-line="line-1"]')[0].text
        assert "max 3" in css(driver, '#counts .count[data-zone="zone-1"]')[0].text
        driver.execute_script("document.getElementById('counts-box').scrollIntoView({block: 'end'})")
        shot(driver, "rules-counts")

        # v2 with a label the edge's model does not know: the edge refuses it and keeps v1; the page says so.
        set_field(driver, '#shapes .item[data-path="zones.0"]', "labels", "persn")
        css(driver, "#save")[0].click()
        wait(driver, lambda d: css(d, '#sync[data-saved-version="2"]'))
        station.status("site", "gate", rules_version=1, rules_error="zones[0].filter.labels: unknown label 'persn'")
        refused = wait(driver, visible("#sync.sync-bad"), message="the edge's refusal is not shown")
        assert "unknown label 'persn'" in refused.text and "still runs v1" in refused.text
        shot(driver, "rules-edge-refused")
        assert not js_errors(driver)
    finally:
        recorder.close()

    # The audit log says who changed what.
    open_page(driver, station, "/alerts#audit")
    entry = wait(driver, visible('#audit tr[data-action="rules.save"][data-target="site/gate"]', "version 1 → 2"))
    assert "supervisor1" in entry.text and "zone 'zone-1' changed: filter" in entry.text

    # A viewer sees the rules, read-only.
    login(driver, station, "viewer")
    open_page(driver, station, "/rules?node=site&stream=gate")
    wait(driver, visible("#readonly-note", "may view the rules"))
    assert not css(driver, "#save")[0].is_displayed() and not css(driver, "#tool-zone")[0].is_displayed()
    assert len(css(driver, "#shapes .item")) == 2
    assert not js_errors(driver)


def test_a_geofence_is_drawn_on_the_map_over_the_drones_footprint(browser, station: Station) -> None:
    driver = browser
    now = time.time()
    lat, lon = SITE
    d = 0.001  # ~100 m: the footprint is a square around the drone
    footprint = [(lat + d, lon - d), (lat + d, lon + d), (lat - d, lon + d), (lat - d, lon - d)]
    vehicle = VehicleState(system_id=1, time=now, lat=lat, lon=lon, alt_rel_m=80.0, heading_deg=0.0, link_ok=True)
    telemetry = Telemetry(node="drone-1", stream="aerial", source="mavlink", geo_status="ok", vehicle=vehicle,
                          footprint=footprint, time=now)  # fmt: skip
    station.status("drone-1", "aerial")
    station.send("drone-1/telemetry/aerial", telemetry.model_dump_json())

    login(driver, station, "supervisor")
    open_page(driver, station, "/rules?node=drone-1&stream=aerial")
    css(driver, "#space-geo")[0].click()
    wait(driver, visible("#geo-note", "footprint"), message="the footprint is not on the map")
    time.sleep(0.5)  # the map fits the footprint
    css(driver, "#tool-zone")[0].click()
    click_at(driver, "#geo-map", [(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6), (0.4, 0.4)])
    wait(driver, lambda d: len(css(d, "#shapes .item")) == 1, message="the geofence was not drawn")
    assert text_of(driver, "#shapes .item .badge") == "zone · map"
    css(driver, "#save")[0].click()
    wait(driver, visible("#saved-notice", "Saved v1"))
    shot(driver, "rules-geofence")
    stored = station.gs.store.current_rules("drone-1", "aerial").rules
    [fence] = stored.zones
    assert fence.space == "geo" and stored.rules[0].kind == RuleKind.INSIDE
    for point_lat, point_lon in fence.points:  # inside the footprint the map was fitted to
        assert lat - d < point_lat < lat + d and lon - d < point_lon < lon + d, fence.points
    assert not js_errors(driver)


# =============================================================================== notifications
def test_a_supervisor_on_any_page_gets_a_notification_a_sound_and_a_toast(browser, station: Station) -> None:
    driver = browser
    origin = "{0.scheme}://{0.netloc}".format(urlparse(station.url))
    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": origin, "permissions": ["notifications"]})
    login(driver, station, "supervisor")
    open_page(driver, station, "/health")  # a page that shows no alerts
    bell = wait(driver, visible("#alert-bell"))
    # Notifications allowed for the site (as if asked before): on; any click on the page lets the sound play.
    wait(driver, lambda d: css(d, '#alert-bell[data-state="on"]'), message="notifications are not on")
    css(driver, "h1")[0].click()
    start = make_alert("note1", node="site", stream="cam", rule="gate-enter", severity=Severity.CRITICAL,
                       start_time=time.time())  # fmt: skip
    station.alert(start)
    toast = wait(driver, visible('#toasts .toast[data-alert-id="note1"]'), message="no toast on the health page")
    assert "gate-enter" in toast.text and "site / cam" in toast.text
    counts = driver.execute_script("return {...document.getElementById('alert-bell').dataset}")
    assert (counts["notifications"], counts["sounds"], counts["toasts"]) == ("1", "1", "1"), counts
    station.alert(make_alert("note1", 1, node="site", stream="cam", start_time=start.start_time))  # an update: quiet
    time.sleep(0.5)
    assert driver.execute_script("return document.getElementById('alert-bell').dataset.toasts") == "1"
    shot(driver, "alerts-toast")

    bell.click()  # muted (remembered for the next pages): nothing more
    wait(driver, lambda d: css(d, '#alert-bell[data-state="off"]'))
    station.alert(make_alert("note2", node="site", stream="cam", start_time=time.time()))
    time.sleep(0.5)
    assert not css(driver, '#toasts .toast[data-alert-id="note2"]')
    bell.click()
    wait(driver, lambda d: css(d, '#alert-bell[data-state="on"]'))
    assert not js_errors(driver)


# ================================================================== acceptance: a real edge node
@pytest.fixture
def edge_node(station: Station, media, model_path, tmp_path: Path):
    """A real edge node on vtest.avi (looped, as a camera): MQTT to the station's broker, its annotated live
    video up to the station (WHEP there), clips kept for alerts; no rules until the station pushes some."""
    from edge.config import parse_config
    from edge.detect.detector import Detector
    from edge.factory import build_node
    from ground_station.auth.roles import Role

    node_name = EDGE_NODE
    _, token = station.gs.accounts.create_token(node_name, Role.EDGE, "test")
    config = parse_config({
        "node": node_name,
        "sources": [{"name": "cam", "url": str(media("vtest.avi")), "loop": True}],
        "detector": {"model": str(model_path), "imgsz": 320},
        "mqtt": {**station.broker.client_settings(node_name), "spool_dir": str(tmp_path / "spool")},
        "status_interval_s": 1.0,
        "metrics": {"enabled": False},
        "video": {"whep": {"port": 0}, "encoder": {"keyframe_interval_s": 1.0},
                  "uplink": {"url": station.url, "token": token}},
    })  # fmt: skip
    detector = Detector(config.detector)
    detector.warm_up(768, 576)
    node = build_node(config, detector=detector)
    node.start()
    try:
        yield node_name
    finally:
        node.stop()


def test_acceptance_a_zone_drawn_on_the_live_picture_reaches_the_edge_and_its_next_alert_plays(
    browser, station: Station, edge_node: str
) -> None:
    driver = browser
    node = edge_node
    deadline = time.monotonic() + 60
    while not any(s["node"] == node and s["state"] == "live" for s in station.gs.relay.streams()):
        assert time.monotonic() < deadline, "the node's live video did not reach the station"
        time.sleep(0.2)
    while station.gs.store.stream_status(node, "cam") is None:
        assert time.monotonic() < deadline, "the node's status did not reach the station"
        time.sleep(0.2)

    # The supervisor draws a zone over the pavement on a still of the live video, people only, and saves.
    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": station.url, "permissions": ["notifications"]})
    login(driver, station, "supervisor")
    open_page(driver, station, f"/rules?node={node}&stream=cam")
    wait(driver, lambda d: css(d, '#frame[data-source="live"]'), 30, "no still of the live video")
    shot(driver, "rules-acceptance-live-still")
    pavement = [(0.02, 0.45), (0.98, 0.45), (0.98, 0.98), (0.02, 0.98)]
    css(driver, "#tool-zone")[0].click()
    click_at(driver, "#overlay", [*pavement, pavement[0]])
    wait(driver, lambda d: len(css(d, "#rules .item")) == 1, message="the zone and its rule were not created")
    set_field(driver, '#shapes .item[data-path="zones.0"]', "labels", "person")
    set_field(driver, '#rules .item[data-path="rules.0"]', "cooldown_s", "1")
    driver.execute_script("document.querySelector('#rules .item').open = true")
    severity = css(driver, '#rules .item [data-field="severity"]')[0]
    severity.send_keys("critical")
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", severity)
    set_field(driver, "#settings", "pre_s", "2")
    set_field(driver, "#settings", "post_s", "2")
    css(driver, "#save")[0].click()
    wait(driver, visible("#saved-notice", "Saved v1"))

    # The edge acknowledges: its status reports v1, which the page shows.
    wait(driver, lambda d: css(d, '#sync[data-in-sync="true"]'), 30, "the edge did not report running v1")
    assert "applied on edge: v1" in css(driver, "#sync")[0].text
    shot(driver, "rules-acceptance-applied")

    # The next alert uses it: it appears live on the alerts page, with its snapshot, and its clip plays.
    open_page(driver, station, "/alerts")
    driver.execute_script("window.__sameDocument = true")
    first_paint = set(row_ids(driver))

    def new_alert(d) -> str | None:
        rows = d.execute_script("return [...document.querySelectorAll('#alerts > li')].map((li) => "
                                "[li.dataset.alertId, li.dataset.rulesVersion])")  # fmt: skip
        fresh = [alert_id for alert_id, version in rows if alert_id not in first_paint and version == "1"]
        return fresh[0] if fresh else None

    alert_id = wait(driver, new_alert, 90, "no new alert of rules v1 appeared live")
    stored = station.gs.store.get_alert(alert_id)
    assert stored.node == node and stored.rules_version == 1 and stored.rule == "zone-1-enter"
    assert stored.zone == "zone-1" and all(o.label == "person" for o in stored.objects)
    # Clicked in the page: live updates re-render the list, so an element found a moment before may be gone.
    driver.execute_script("document.querySelector(arguments[0]).click()",
                          f'#alerts li[data-alert-id="{alert_id}"] .event-btn')  # fmt: skip
    wait(driver, lambda d: image_loaded(d, "#detail-snapshot"), 30, "the alert's snapshot is not shown")
    wait(driver, lambda d: css(d, "#detail-clip"), 60, "the alert's clip did not arrive")
    duration = plays(driver, 1.0, 30)
    assert 3.0 <= duration <= 6.5, duration  # 2 s before and 2 s after the start, from a keyframe (1 s GOP)
    assert driver.execute_script("return window.__sameDocument === true"), "the page was reloaded"
    shot(driver, "alerts-acceptance-clip")
    detail = json.loads(driver.execute_script("return JSON.stringify({...document.getElementById('detail').dataset})"))
    assert detail["alertId"] == alert_id
    assert not js_errors(driver)
