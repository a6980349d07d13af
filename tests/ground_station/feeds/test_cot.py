"""Cursor on Target out of the ground station, read back with TAKProto (the TAK project's own CoT codec,
an independent parser): the right type, uid, point, ce and stale time, over UDP and over TCP."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import takproto

from ground_station.feeds.cot import ALARM_TYPE, CotConfig, CotSender, alert_cot, detection_cot
from ground_station.service import GroundStation
from smarteye.wire.messages import EventType, GeoPosition
from smarteye.wire.topics import alerts_topic
from tests.support.accounts import FAST_HASHER
from tests.support.alerts import make_alert
from tests.support.factories import make_event
from tests.support.ingest import make_config

HERE = GeoPosition(lat=36.3731234, lon=127.3659876, uncertainty_m=4.5, source="klv")


def _parsed(xml: bytes) -> takproto.proto.TakMessage:
    message = takproto.parse_proto(takproto.xml2proto(xml.decode()))
    assert message is not None, xml
    return message


def test_a_geolocated_detection_is_a_cot_event_at_its_point_with_its_error() -> None:
    event = make_event("ev1", label="car", track_id=7, capture_time=1_800_000_000.0, geo=HERE)
    cot = _parsed(detection_cot("site", event, stale_s=60)).cotEvent
    assert cot.type == "a-u-G-E-V" and cot.uid == "smarteye-site-cam1-ev1" and cot.how == "m-p"
    assert (round(cot.lat, 6), round(cot.lon, 6)) == (36.373123, 127.365988) and cot.ce == pytest.approx(4.5)
    assert cot.sendTime == 1_800_000_000_000 and cot.staleTime - cot.startTime == 60_000
    assert detection_cot("site", make_event("ev2"), 60) is None, "no ground position, no CoT"
    fused = event.model_copy(update={"geo_fused": HERE.model_copy(update={"uncertainty_m": 1.5})})
    assert _parsed(detection_cot("site", fused, 60)).cotEvent.ce == pytest.approx(1.5), "the track-fused error"
    person = _parsed(detection_cot("site", make_event("ev3", geo=HERE.model_copy(update={"uncertainty_m": None})), 60))
    assert person.cotEvent.type == "a-u-G" and person.cotEvent.ce == 9_999_999.0, "unknown error is CoT's unknown"


def test_an_alert_with_located_objects_is_one_alarm_at_their_centroid() -> None:
    alert = make_alert("al1", objects=2)
    located = [o.model_copy(update={"geo": HERE.model_copy(update={"lat": HERE.lat + i * 1e-4})})
               for i, o in enumerate(alert.objects)]  # fmt: skip
    cot = _parsed(alert_cot("site", alert.model_copy(update={"objects": located}), 120)).cotEvent
    assert cot.type == ALARM_TYPE and cot.uid == "smarteye-alert-al1"
    assert cot.lat == pytest.approx(HERE.lat + 0.5e-4, abs=1e-7) and "door-enter" in cot.detail.xmlDetail
    assert alert_cot("site", alert.model_copy(update={"objects": []}), 120) is None


def test_the_sender_reaches_a_tcp_tak_server_that_starts_late_and_loses_nothing_queued() -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    address = port.getsockname()
    port.close()
    sender = CotSender(CotConfig(url=f"tcp://{address[0]}:{address[1]}"))
    sender.start()
    try:
        for i in range(3):
            sender.on_message("event", "site", make_event(f"ev{i}", geo=HERE).model_dump_json())
        time.sleep(0.5)  # nobody listens yet: kept in the queue
        received = bytearray()
        with socket.create_server(address) as server:
            server.settimeout(10)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                while received.count(b"</event>") < 3:
                    received += conn.recv(65536)
        assert [f"smarteye-site-cam1-ev{i}" in received.decode() for i in range(3)] == [True] * 3
        assert sender.errors >= 1 and sender.dropped == 0
    finally:
        sender.stop()


def test_the_station_sends_cot_for_detections_it_ingests_over_udp(broker, prefix, publisher, tmp_path: Path) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    host, port = receiver.getsockname()
    config = make_config(broker, f"sqlite:///{tmp_path / 'gs.sqlite'}", prefix, cot={"url": f"udp://{host}:{port}"})
    station = GroundStation(config, hasher=FAST_HASHER)
    got: list[bytes] = []

    def listen() -> None:
        while len(got) < 2:
            try:
                got.append(receiver.recv(65536))
            except OSError:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    station.aggregator.start()
    station.cot.start()
    try:
        assert station.aggregator.wait_ready(10), "the station did not subscribe"
        publisher.event(make_event("seen", geo=HERE, capture_time=time.time()))
        publisher.event(make_event("blind", seq=0, type=EventType.NEW, capture_time=time.time()))
        alert = make_alert("al9")
        located = alert.model_copy(update={"objects": [alert.objects[0].model_copy(update={"geo": HERE})]})
        publisher.publish(alerts_topic("", "node1", "cam1").lstrip("/"), located.model_dump_json())
        publisher.flush()
        listener.join(15)
    finally:
        station.cot.stop()
        station.aggregator.stop()
        station.store.close()
        receiver.close()
    uids = sorted(_parsed(data).cotEvent.uid for data in got)
    assert uids == ["smarteye-alert-al9", "smarteye-node1-cam1-seen"], uids
