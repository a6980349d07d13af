"""Bad KLV on a live stream: a poisoned packet (EG 0104 field of view of +inf, as anyone on the unauthenticated
UDP feed can send) costs that packet only; frames keep being located, and telemetry of every other stream keeps
being published. VMTI reports reach the published telemetry."""

from __future__ import annotations

import struct
import time
from types import SimpleNamespace

import pytest

from edge.config.geo import GeoConfig
from edge.frame import DataPacket, Frame
from edge.geo.locator import StreamGeolocator
from edge.outputs.status import StatusReporter
from edge.telemetry.vmti import encode_vmti_packet
from edge.track.tracker import TrackedBox
from smarteye.wire.messages import GeoStatus, Telemetry
from smarteye.wire.topics import telemetry_topic
from smarteye.wire.vmti import VmtiReport, VmtiTarget
from tests.edge.telemetry.test_klv import demux

HFOV_ELEMENT = bytes.fromhex("060e2b34010101020420020101080000")  # key of the sensor HFOV (4-byte float)


def poisoned(packet: bytes, value: float = float("inf")) -> bytes:
    at = packet.index(HFOV_ELEMENT) + 16
    assert packet[at] == 4
    return packet[: at + 1] + struct.pack(">f", value) + packet[at + 5 :]


def frame_with(seq: int, pts: float, *payloads: bytes) -> Frame:
    frame = Frame("drone", seq, capture_time=time.time(), pts=pts, width=1280, height=720)
    frame.data = tuple(DataPacket(seq * 10 + i, pts, time.time(), p) for i, p in enumerate(payloads))
    frame.tracks = [TrackedBox(1, 600, 300, 680, 400, 0.9, 0)]
    return frame


@pytest.fixture(scope="module")
def aphill(media) -> list[tuple[bytes, float]]:
    return demux(media("kwiver_aphill_short.ts"))


def klv_locator() -> StreamGeolocator:
    return StreamGeolocator(GeoConfig.model_validate({"telemetry": {"source": "klv", "stale_after_s": 2.0}}))


def test_infinite_field_of_view_never_fails_a_frame(aphill) -> None:
    (good, pts), (good2, pts2) = aphill[0], aphill[1]
    locator = klv_locator()
    bad_frame = frame_with(1, pts, poisoned(good))
    locator.process(bad_frame)  # raised before: every frame carrying the packet failed
    assert bad_frame.geo_status is GeoStatus.NO_TELEMETRY and bad_frame.tracks[0].geo is None
    assert locator.klv.errors["non_finite"] == 1
    frame = frame_with(2, pts2, poisoned(good2), good2)  # the poisoned one first, its good twice after
    locator.process(frame)
    assert frame.geo_status is GeoStatus.OK and frame.tracks[0].geo is not None
    _, sensor = locator.latest_telemetry()
    assert sensor is not None and 0 < sensor.hfov_deg < 10


class _BrokenLocator(StreamGeolocator):
    """A stream whose telemetry cannot be built (whatever the cause): it must not silence the others."""

    def latest_telemetry(self):
        raise OverflowError("math range error")


class _Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish_state(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, payload))


def test_one_streams_failure_does_not_stop_the_others_telemetry(aphill) -> None:
    healthy = klv_locator()
    healthy.process(frame_with(1, aphill[0][1], aphill[0][0]))
    broken = _BrokenLocator(GeoConfig.model_validate({"telemetry": {"source": "klv"}}))
    health = SimpleNamespace(health=SimpleNamespace(width=1280, height=720))
    recorder = _Recorder()
    reporter = StatusReporter(
        "node1", "smarteye", recorder, {"a": health, "b": health}, {}, None, {"a": broken, "b": healthy}, {}
    )  # type: ignore[arg-type]
    reporter.publish_telemetry()
    reporter.publish_telemetry()
    assert [topic for topic, _ in recorder.published] == [telemetry_topic("smarteye", "node1", "b")] * 2
    message = Telemetry.model_validate_json(recorder.published[0][1])
    assert message.stream == "b" and message.sensor is not None and message.footprint is not None


def test_standalone_vmti_reports_are_published_with_the_telemetry(aphill) -> None:
    (packet, pts), (packet2, pts2) = aphill[0], aphill[1]
    report = VmtiReport(
        system_name="onboard", frame_width=1280, frame_height=720,
        targets=[VmtiTarget(id=9, box_px=(600, 300, 680, 400), confidence_pct=77, lat=38.25, lon=-77.36)],
    )  # fmt: skip
    locator = klv_locator()
    locator.process(frame_with(1, pts, packet))
    locator.process(frame_with(2, pts2, encode_vmti_packet(report), packet2))
    _, sensor = locator.latest_telemetry()
    assert sensor is not None and sensor.vmti is not None
    assert sensor.vmti.system_name == "onboard" and sensor.vmti.pts == pts2
    (target,) = sensor.vmti.targets
    assert target.id == 9 and target.box_px == (600, 300, 680, 400) and target.confidence_pct == 77
    published = Telemetry(node="n", stream="drone", source="klv", sensor=sensor, time=time.time())
    again = Telemetry.model_validate_json(published.model_dump_json())
    assert again.sensor.vmti.targets[0].lat == pytest.approx(38.25, abs=1e-6)
