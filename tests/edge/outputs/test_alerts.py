"""The alert sink against a real private Mosquitto, through the node's real MqttPublisher (spool and all): alert
messages, the start's snapshot (decoded with OpenCV: the zone and the objects are drawn), counts, and a clip cut
from real H.264 and announced by its own update."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge.config.node import SnapshotConfig
from edge.config.video import EncoderConfig
from edge.frame import Frame
from edge.metrics import EdgeMetrics
from edge.outputs.alerts import AlertSink
from edge.outputs.mqtt_publisher import MqttPublisher
from edge.outputs.publication import Publication
from smarteye.config.mqtt import MqttConfig
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from smarteye.wire.messages import Alert, AlertObject, AlertState, Box, ZoneCounts
from smarteye.wire.rules import ClipSettings, Rule, RuleKind, RuleSet, Severity, Zone
from tests.support.h264 import Encoding, picture
from tests.support.polling import wait_for
from tests.support.secure_broker import paho_client

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(60),
]

PREFIX = "smarteye-test/v1"
WIDTH, HEIGHT = 640, 480
GREY = 90
RED = (0, 0, 255)  # BGR: the colour of a critical alert's zone


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes


class Collector:
    """A real subscriber keeping every message as bytes (JPEG and MP4 payloads too), in arrival order."""

    def __init__(self, broker: MosquittoBroker, topic: str) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho_client(broker, client_id=f"collector-{uuid.uuid4().hex[:8]}")  # as the station
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5), "the collector could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, bytes(message.payload)))

    def under(self, section: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.split("/")[3] == section]

    def alerts(self) -> list[dict]:
        return [json.loads(m.payload) for m in self.under("alerts")]

    def index(self, topic: str) -> int:
        with self._lock:
            return next(i for i, m in enumerate(self.messages) if m.topic == topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(secure_broker: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return secure_broker("node1", prefix=PREFIX)


@pytest.fixture
def publisher(broker: MosquittoBroker, tmp_path: Path) -> Iterator[MqttPublisher]:
    settings = {
        **broker.client_settings("node1"),
        "spool_dir": tmp_path / "spool",
        "topic_prefix": PREFIX,
        "confirmations": False,
    }  # no station here: the broker's PUBACK settles a message
    config = MqttConfig.model_validate(settings)
    pub = MqttPublisher(config, client_id="edge-node1", availability_topic=f"{PREFIX}/node1/availability",
                        spool_name="node1")  # fmt: skip
    pub.start()
    yield pub
    pub.stop()


@pytest.fixture
def collector(broker: MosquittoBroker) -> Iterator[Collector]:
    c = Collector(broker, f"{PREFIX}/#")
    yield c
    c.close()


def door_rules(clip: ClipSettings | None = None) -> RuleSet:
    """A square zone in the middle of the picture, and a critical rule on it."""
    return RuleSet(
        version=3,
        zones=[Zone(name="door", points=[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)])],
        rules=[Rule(name="door-enter", kind=RuleKind.ENTER, zone="door", severity=Severity.CRITICAL)],
        clip=clip or ClipSettings(),
    )


def alert(state: AlertState, seq: int, capture_time: float, start_time: float, alert_id: str = "a1") -> Alert:
    person = AlertObject(
        track_id=7, label="person", score=0.9, box=Box(x1=300, y1=200, x2=380, y2=330),
        box_norm=Box(x1=300 / WIDTH, y1=200 / HEIGHT, x2=380 / WIDTH, y2=330 / HEIGHT),
    )  # fmt: skip
    return Alert(
        node="node1", id=f"{alert_id}:{seq}", alert_id=alert_id, seq=seq, state=state, stream="cam",
        rule="door-enter", rule_kind=RuleKind.ENTER, severity=Severity.CRITICAL, zone="door",
        objects=[person] if state is not AlertState.END else [], count=1, capture_time=capture_time,
        start_time=start_time, end_time=capture_time if state is AlertState.END else None, publish_time=0.0,
        rules_version=3,
    )  # fmt: skip


def frame_with(seq: int, capture_time: float, rules: RuleSet, alerts: list[Alert],
               counts: ZoneCounts | None = None, image: np.ndarray | None = None) -> Frame:  # fmt: skip
    if image is None:
        image = np.full((HEIGHT, WIDTH, 3), GREY, np.uint8)
    frame = Frame.from_bgr("cam", seq, capture_time, None, image)
    frame.rules, frame.alerts, frame.counts = rules, alerts, counts
    return frame


def close_to(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tolerance))


def test_start_update_end_snapshot_and_counts_reach_the_broker(
    publisher: MqttPublisher, collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    """Each message once, in order, on its topic; the start's JPEG comes before the start that announces it, shows
    the zone in the rule's severity colour and the object boxed, downscaled like event snapshots, and leaves the
    frame's own picture clean for the video sink. No video: alerts carry no clip, and the sink says so once."""
    metrics = EdgeMetrics("node1")
    sink = AlertSink(Publication(publisher, "node1", PREFIX, SnapshotConfig(max_width=320), metrics))
    rules = door_rules()
    t = time.time()
    counts = ZoneCounts(node="node1", stream="cam", zones={"door": 1}, lines={}, rules_version=3, time=t + 0.2)
    first = frame_with(1, t, rules, [alert(AlertState.START, 0, t, t)])
    clean = first.bgr().copy()
    caplog.set_level(logging.WARNING, "edge.outputs.alerts")
    sink.consume(first)
    assert np.array_equal(first.bgr(), clean)  # drawn on a copy
    sink.consume(frame_with(2, t + 0.1, rules, [alert(AlertState.UPDATE, 1, t + 0.1, t)]))
    sink.consume(frame_with(3, t + 0.2, rules, [alert(AlertState.END, 2, t + 0.2, t)], counts))

    wait_for(lambda: len(collector.alerts()) == 3 and len(collector.under("counts")) == 1, 10)
    alerts = collector.alerts()
    assert [(a["id"], a["state"], a["seq"]) for a in alerts] == [("a1:0", "start", 0), ("a1:1", "update", 1),
                                                                 ("a1:2", "end", 2)]  # fmt: skip
    assert [a["snapshot"] for a in alerts] == [True, False, False]
    assert all(a["clip"] is None and a["publish_time"] >= t for a in alerts)
    assert all(m.topic == f"{PREFIX}/node1/alerts/cam" for m in collector.under("alerts"))
    assert json.loads(collector.under("counts")[0].payload)["zones"] == {"door": 1}
    assert collector.under("counts")[0].topic == f"{PREFIX}/node1/counts/cam"

    snapshot_topic = f"{PREFIX}/node1/alert-snapshots/cam/a1"
    [snapshot] = collector.under("alert-snapshots")
    assert snapshot.topic == snapshot_topic
    assert collector.index(snapshot_topic) < collector.index(f"{PREFIX}/node1/alerts/cam")  # evidence first
    image = cv2.imdecode(np.frombuffer(snapshot.payload, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)  # 640 px wide frame at snapshots.max_width 320
    assert close_to(image[120, 80], RED)  # the zone's left edge, x = 0.25 of the width
    assert close_to(image[60, 160], RED)  # its top edge
    inside, outside = image[150, 110].astype(int), image[220, 20].astype(int)  # filled in see-through red
    assert inside[2] - inside[0] > 40 and close_to(outside, (GREY, GREY, GREY), 12)
    assert close_to(image[130, 150], (255, 255, 255))  # the person's box: its left edge at x = 300 / 2
    assert image[125:135, 154:186].mean() < 200  # ... an outline, not a filled box

    assert [r.message for r in caplog.records].count(
        "stream cam: its rules want alert clips, but the node has no live video (video.enabled: false): alerts "
        "carry no clip"
    ) == 1
    assert metrics.registry.get_sample_value(
        "smarteye_edge_alerts_published_total", {"node": "node1", "stream": "cam", "state": "start"}
    ) == 1  # fmt: skip
    assert (sink.published, sink.snapshots_published, sink.counts_published) == (3, 1, 1)


def test_snapshots_off_means_no_snapshot_and_the_start_says_so(publisher: MqttPublisher, collector: Collector) -> None:
    sink = AlertSink(Publication(publisher, "node1", PREFIX, SnapshotConfig(enabled=False)))
    t = time.time()
    sink.consume(frame_with(1, t, door_rules(), [alert(AlertState.START, 0, t, t)]))
    wait_for(lambda: len(collector.alerts()) == 1, 10)
    assert collector.alerts()[0]["snapshot"] is False
    assert collector.under("alert-snapshots") == []


def test_a_start_gets_a_clip_from_the_streams_video_announced_by_its_own_update(
    publisher: MqttPublisher, collector: Collector
) -> None:
    """The stream's real encoded video (as the video sink would make it after this sink): the clip is cut around
    the start, published as MP4 on the clips topic, then announced by an `update` with id `<alert_id>:clip`, the
    start's seq and the clip's times and size."""
    encoding = Encoding(EncoderConfig(keyframe_interval_s=1.0))
    encoding.encoder.start()
    metrics = EdgeMetrics("node1")
    out = Publication(publisher, "node1", PREFIX, SnapshotConfig(), metrics)
    sink = AlertSink(out, fanouts={"cam": encoding.fanout})
    rules = door_rules(ClipSettings(pre_s=1, post_s=1))
    t0 = round(time.time(), 1)
    try:
        for step in range(40):  # 4 s at 10 fps; the situation starts at t0 + 2
            t = round(t0 + step / 10, 3)
            alerts = [alert(AlertState.START, 0, t, t, "b2")] if step == 20 else []
            image = picture(WIDTH, HEIGHT, step % 40)
            sink.consume(frame_with(step, t, rules, alerts, image=image))
            encoding.encode(image, t)  # the video sink's turn: the recorder now consumes the fan-out
        wait_for(lambda: len(collector.under("clips")) == 1 and len(collector.alerts()) == 2, 10)
    finally:
        sink.stop()
        encoding.encoder.stop()

    [clip] = collector.under("clips")
    assert clip.topic == f"{PREFIX}/node1/clips/cam/b2"
    start, announcement = collector.alerts()
    assert (start["id"], start["state"]) == ("b2:0", "start")
    assert announcement["id"] == "b2:clip" and announcement["alert_id"] == "b2"
    assert (announcement["state"], announcement["seq"], announcement["start_time"]) == ("update", 0, t0 + 2)
    assert announcement["clip"]["bytes"] == len(clip.payload)
    assert announcement["clip"]["start_time"] == pytest.approx(t0 + 1)  # keyframes every second: exactly pre_s
    assert announcement["clip"]["end_time"] == pytest.approx(t0 + 3)
    sections = [m.topic.split("/")[3] for m in collector.messages]
    assert [s for s in sections if s in ("alerts", "clips")] == ["alerts", "clips", "alerts"]  # MP4 before its update

    with av.open(io.BytesIO(clip.payload)) as container:
        frames = list(container.decode(video=0))
    assert frames[0].key_frame and len(frames) == 21  # t0+1 .. t0+3 at 10 fps
    assert frames[0].to_ndarray(format="bgr24").shape == (HEIGHT, WIDTH, 3)
    assert metrics.registry.get_sample_value(
        "smarteye_edge_alert_clips_total", {"node": "node1", "stream": "cam", "outcome": "made"}
    ) == 1  # fmt: skip
    assert sink.clips_published == 1
