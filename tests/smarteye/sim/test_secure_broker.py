"""The secured broker (TLS, a user per node and for the station, the ACL of configs/mosquitto/) refuses what
it must: anonymous and wrong logins, plain TCP, and a node publishing under another node's topics; and the
configuration shipped in configs/mosquitto/ is that one and starts a real Mosquitto."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from smarteye.sim.broker import MosquittoBroker, acl_rules, find_mosquitto
from smarteye.sim.ports import free_tcp_port
from smarteye.sim.tls import make_server_pki

pytestmark = [pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
              pytest.mark.timeout(60)]  # fmt: skip

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "mosquitto"
PREFIX = "smarteye/v1"


@pytest.fixture(scope="module")
def secured() -> Iterator[MosquittoBroker]:
    with MosquittoBroker.secured(["site-a", "site-b"], prefix=PREFIX) as broker:
        yield broker


class Client:
    """A paho MQTT 5 client over verified TLS; remembers CONNACK, PUBACK reason codes and messages."""

    def __init__(self, broker: MosquittoBroker, user: str | None, password: str | None = None, tls: bool = True):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        if user is not None:
            self.client.username_pw_set(user, password if password is not None else broker.users[user])
        if tls:
            self.client.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()  # set by a CONNACK, or by the broker closing the connection first
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.connected.set()
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.connack = rc
        self.connected.set()

    def connect(self, broker: MosquittoBroker) -> Client:
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.connected.wait(5)
        return self

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 5
        while info.mid not in self.pubacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_acl_file_in_configs_is_the_one_the_tests_run() -> None:
    assert (CONFIGS / "acl").read_text(encoding="utf-8") == acl_rules(PREFIX)


def test_logins_are_required_and_checked(secured: MosquittoBroker) -> None:
    anonymous = Client(secured, None).connect(secured)
    wrong = Client(secured, "site-a", "not-the-password").connect(secured)
    right = Client(secured, "site-a").connect(secured)
    try:
        assert anonymous.connack is not None and anonymous.connack.is_failure
        assert wrong.connack is not None and wrong.connack.is_failure
        assert right.connack is not None and not right.connack.is_failure
    finally:
        for client in (anonymous, wrong, right):
            client.close()


def test_plain_tcp_is_refused(secured: MosquittoBroker) -> None:
    plain = Client(secured, "site-a", tls=False)
    try:
        with contextlib.suppress(OSError):  # the TLS listener may close at once, or never answer
            plain.connect(secured)
        assert plain.connack is None  # no CONNACK over plain TCP: the password never travels in clear
    finally:
        plain.close()


def test_a_node_publishes_only_under_its_own_topics_and_the_station_reads_all(secured: MosquittoBroker) -> None:
    station = Client(secured, "station").connect(secured)
    node_a = Client(secured, "site-a").connect(secured)
    try:
        station.client.subscribe(f"{PREFIX}/#", qos=1)
        time.sleep(0.3)
        assert not node_a.publish(f"{PREFIX}/site-a/events/cam1", b"own").is_failure
        refused = node_a.publish(f"{PREFIX}/site-b/events/cam1", b"forged")
        assert refused.is_failure and refused.getName() == "Not authorized"
        assert node_a.publish(f"{PREFIX}/site-b/status/cam1", b"forged").is_failure
        assert node_a.publish("other/site-a/events/cam1", b"outside the prefix").is_failure
        assert not node_a.publish(f"{PREFIX}/site-a/availability", b"own").is_failure
        deadline = time.monotonic() + 3
        while len(station.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert sorted(topic for topic, _ in station.messages) == [f"{PREFIX}/site-a/availability",
                                                                   f"{PREFIX}/site-a/events/cam1"]  # fmt: skip
    finally:
        station.close()
        node_a.close()


def test_the_shipped_configuration_starts_a_broker(tmp_path: Path) -> None:
    """configs/mosquitto/smarteye.conf, with its /etc paths pointed at a temp dir, is a valid Mosquitto
    config that needs a login over TLS."""
    pki = make_server_pki(tmp_path)
    (tmp_path / "acl").write_text((CONFIGS / "acl").read_text(encoding="utf-8"), encoding="utf-8")
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "site-a", "pw-a"], check=True)
    port = free_tcp_port()
    text = (CONFIGS / "smarteye.conf").read_text(encoding="utf-8")
    text = text.replace("/etc/mosquitto/smarteye/", f"{tmp_path}/").replace("/var/lib/mosquitto/", f"{tmp_path}/")
    text = re.sub(r"^listener 8883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    text += f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
    conf = tmp_path / "smarteye.conf"
    conf.write_text(text, encoding="utf-8")
    broker = MosquittoBroker(port=port, ca_file=pki.ca_file, users={"site-a": "pw-a"})
    proc = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        node = Client(broker, "site-a")
        while time.monotonic() < deadline:
            try:
                node.connect(broker)
                break
            except OSError:
                time.sleep(0.05)
        assert node.connack is not None and not node.connack.is_failure, proc.poll()
        assert not node.publish("smarteye/v1/site-a/events/cam1", b"x").is_failure
        assert node.publish("smarteye/v1/site-b/events/cam1", b"x").is_failure
        node.close()
    finally:
        proc.terminate()
        proc.wait(5)
