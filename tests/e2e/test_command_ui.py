"""Cross-command acceptance in headless Chromium: a pilot sends the simulated copter to look at an alert.

Real parts: the ground station the product runs (web server, API, MAVLink link, SQLite, Mosquitto), the
copter simulator on its own TCP port (as ArduCopter SITL serves 5760; simulated clock ×10), Chromium.
The pilot takes off from the map, opens /map?look=…&alert=… (what the alert page's button does),
checks the plan drawn on the map, confirms it, and watches the vehicle fly there; arrival and the camera
attitude are read from the vehicle's own state. A viewer sees the vehicles but no command button.
Screenshot: test-artifacts/command-look-arrived.png.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from ground_station.auth.roles import Role
from ground_station.command.planner import distance_m, moved
from ground_station.service import GroundStation
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.copter import CopterSimulator
from smarteye.sim.ports import free_tcp_port
from smarteye.wire.messages import GeoPosition
from smarteye.wire.topics import alerts_topic
from tests.support.accounts import FAST_HASHER
from tests.support.alerts import make_alert
from tests.support.browser import chromium, css, js_errors, shot, visible, wait
from tests.support.factories import make_event
from tests.support.ingest import Publisher, make_config

HOME = (36.3725, 127.3650, 60.0)
pytestmark = pytest.mark.slow


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[GroundStation, CopterSimulator, dict[str, str], Publisher]]:
    mavlink_port = free_tcp_port()
    sim = CopterSimulator(f"tcpin:127.0.0.1:{mavlink_port}", home=HOME, speedup=10.0).start()
    with MosquittoBroker.secured(["site-a", "drone-node"]) as broker:
        config = make_config(
            broker, f"sqlite:///{tmp_path / 'gs.sqlite'}", "smarteye/v1",
            web={"host": "127.0.0.1", "port": free_tcp_port(), "secure_cookies": False},
            command={"vehicles": [{"name": "copter1", "url": f"tcp:127.0.0.1:{mavlink_port}",
                                   "stream": "drone-node/drone"}],
                     "standoff_m": 40, "altitude_above_target_m": 30},
        )  # fmt: skip
        gs = GroundStation(config, hasher=FAST_HASHER)
        passwords = {role: secrets.token_urlsafe(10) for role in ("pilot", "viewer")}
        for role, password in passwords.items():
            gs.accounts.create_user(role, password, Role(role))
        gs.start()
        publisher = Publisher(broker, "smarteye/v1")
        try:
            yield gs, sim, passwords, publisher
        finally:
            publisher.close()
            gs.stop()
            sim.stop()


@pytest.fixture
def browser(tmp_path_factory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def _login(driver, gs: GroundStation, user: str, password: str) -> None:
    driver.get(gs.url + "/login")
    driver.delete_all_cookies()
    wait(driver, visible("#username")).send_keys(user)
    css(driver, "#password")[0].send_keys(password)
    css(driver, "#login-submit")[0].click()
    wait(driver, lambda d: urlparse(d.current_url).path == "/timeline", message="login failed")


def _text(driver, selector: str) -> str:
    """The element's text as written (badges are upper-cased by CSS, which Selenium's .text applies)."""
    found = css(driver, selector)
    return (found[0].get_attribute("textContent") or "") if found else ""


def _click(driver, selector: str) -> None:
    """Click an element of the command card, which redraws every second: find it again if it was replaced."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(10):
        try:
            wait(driver, lambda d: css(d, selector), 10, selector)[0].click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"could not click {selector}")


def shows(selector: str, text: str):
    return lambda driver: text in _text(driver, selector)


def test_a_pilot_sends_the_copter_to_look_at_an_alert_from_the_map(station, browser) -> None:
    gs, sim, passwords, publisher = station
    target = moved(*HOME[:2], 150.0, 60.0)
    where = GeoPosition(lat=target[0], lon=target[1], uncertainty_m=6.0, source="homography")
    alert = make_alert("alert-42", node="site-a", stream="gate-cam", start_time=time.time() - 5)
    alert = alert.model_copy(update={"objects": [alert.objects[0].model_copy(update={"geo": where})]})
    publisher.publish(alerts_topic("", "site-a", "gate-cam").lstrip("/"), alert.model_dump_json())
    publisher.flush()
    wait(browser, lambda _: gs.store.get_alert("alert-42") is not None, 10, "the alert stored")

    _login(browser, gs, "pilot", passwords["pilot"])
    browser.get(gs.url + "/map")
    wait(browser, shows("#cmd-link", "connected"), 20, "the vehicle's link on the map")
    wait(browser, lambda d: css(d, '[data-vehicle="copter1"]'), 20, "the vehicle on the map (needs a position)")
    _click(browser, "#cmd-takeoff")
    wait(browser, shows("#cmd-notice", "Accepted"), 15, "take-off accepted")
    wait(browser, lambda d: sim.snapshot().rel_alt > 19.5, 20, "the copter at 20 m")

    browser.get(f"{gs.url}/alerts?alert=alert-42")
    _click(browser, "#detail-send-drone")  # the alert's own button: to the map, with the look planned
    wait(browser, shows("#cmd-plan", "alert alert-42"), 20, "the plan for the alert")
    assert css(browser, '[data-plan-route="copter1"]') and css(browser, '[data-target="planned"]')
    assert [c for c, _ in sim.commands if c not in (22, 176, 400, 512)] == [], "nothing sent before confirming"
    _click(browser, "#cmd-confirm")
    wait(browser, shows("#cmd-notice", "Accepted"), 15, "the look accepted")
    assert "GUIDED" in _text(browser, "#cmd-mode")
    wait(browser, shows("#cmd-flight", "to go"), 10, "progress (distance, ETA) while flying")
    shot(browser, "command-look-flying")
    wait(browser, shows("#cmd-flight", "arrived"), 40, "arrival shown on the map")
    vehicle = sim.snapshot()
    plan_standoff = gs.commander.status("copter1")["flight"]["plan"]["standoff"]
    assert distance_m(vehicle.lat, vehicle.lon, plan_standoff["lat"], plan_standoff["lon"]) < 10
    expected_pitch = -math.degrees(math.atan2(30, 40))  # 30 m above the target, 40 m short of it
    wait(browser, lambda d: abs(sim.snapshot().gimbal_pitch - expected_pitch) < 3, 10, "the camera on the target")
    assert css(browser, '[data-route="copter1"]') and css(browser, '[data-target="flight"]')
    # What the drone's own edge node would publish on arrival: a person geolocated 5 m from the target.
    seen = make_event("seen-1", node="drone-node", stream="drone", capture_time=time.time(),
                      geo=GeoPosition(lat=moved(*target, 3, 4)[0], lon=moved(*target, 3, 4)[1], uncertainty_m=3.0,
                                      source="mavlink"))  # fmt: skip
    publisher.event(seen)
    publisher.flush()
    wait(browser, shows("#cmd-seen", "confirmed by copter1"), 10, "the look confirmed on the map")
    log = _text(browser, "#cmd-log")
    assert "DO_REPOSITION: accepted" in log and "DO_SET_ROI_LOCATION: accepted" in log
    shot(browser, "command-look-arrived")
    _click(browser, "#cmd-rtl")
    wait(browser, shows("#cmd-mode", "RTL"), 15, "return to launch")
    browser.get(f"{gs.url}/alerts?alert=alert-42")
    wait(browser, shows("#detail-confirmation", "Confirmed by copter1"), 10, "the alert shows the drone's confirmation")
    shot(browser, "command-alert-confirmed")
    assert js_errors(browser) == []

    _login(browser, gs, "viewer", passwords["viewer"])
    browser.get(gs.url + "/map")
    wait(browser, lambda d: css(d, "#command-card") and not css(d, "#cmd-takeoff") and css(d, "#map"), 10, "map")
    assert css(browser, "#command-card")[0].get_attribute("hidden") is not None, "viewers see no vehicle or command"


def test_killing_the_simulator_mid_flight_shows_link_lost(station, browser) -> None:
    gs, sim, passwords, _ = station
    _login(browser, gs, "pilot", passwords["pilot"])
    browser.get(gs.url + "/map")
    wait(browser, shows("#cmd-link", "connected"), 20, "the vehicle's link")
    sim.stop()
    wait(browser, shows("#cmd-link", "LINK LOST"), gs.config.command.heartbeat_timeout_s + 3, "link lost shown")
    assert css(browser, "#cmd-takeoff")[0].get_attribute("disabled") is not None
