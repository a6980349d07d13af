"""Acceptance (alerts): a real node on real video with a rule and nobody watching its video still encodes it for
the alert's clip: the alert arrives with its snapshot, then the MP4 cut from the node's own H.264 around the
start, announced by the alert's clip update, and the node's stop ends what is open (real model, real broker, MP4
decoded back with PyAV)."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid

import av
import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge.config import parse_config
from edge.detect.detector import Detector
from edge.factory import build_node
from smarteye.sim.broker import MosquittoBroker
from tests.support.secure_broker import paho_client

PRE_S, POST_S = 2.0, 2.0
KEYFRAME_S = 1.0


def test_an_alert_on_real_video_gets_its_snapshot_and_a_clip_nobody_was_watching(media, model_path, tmp_path) -> None:
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    with MosquittoBroker.secured(["clips"]) as broker:
        client = paho_client(broker, client_id=f"test-{uuid.uuid4().hex[:8]}")  # as the station
        subscribed = threading.Event()
        client.on_connect = lambda c, *_: c.subscribe("smarteye/v1/#", qos=1)
        client.on_subscribe = lambda *_: subscribed.set()

        def keep(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            with lock:
                received.append((message.topic, bytes(message.payload)))

        client.on_message = keep
        client.connect(broker.host, broker.port)
        client.loop_start()
        assert subscribed.wait(5)
        rules = {
            # The lower two thirds of the picture (the pavement people walk on); a person in it for 2.5 s, so the
            # ring holds the seconds before the start.
            "zones": [{"name": "pavement", "points": [[0, 0.33], [1, 0.33], [1, 1], [0, 1]],
                       "filter": {"labels": ["person"], "min_time_s": 2.5}}],
            "rules": [{"name": "walkers", "kind": "inside", "zone": "pavement", "severity": "critical"}],
            "clip": {"pre_s": PRE_S, "post_s": POST_S},
        }  # fmt: skip
        config = parse_config({
            "node": "clips",
            "sources": [{"name": "cam", "url": str(media("vtest.avi")), "rules": rules}],
            "detector": {"model": str(model_path), "imgsz": 320},
            "mqtt": {**broker.client_settings("clips"), "spool_dir": str(tmp_path / "spool")},
            "metrics": {"enabled": False},
            "video": {"whep": {"port": 0}, "encoder": {"keyframe_interval_s": KEYFRAME_S}},  # no viewer, no output
        })  # fmt: skip
        detector = Detector(config.detector)
        detector.warm_up(768, 576)  # the first frame is not seconds late: the video runs evenly from the start
        node = build_node(config, detector=detector)
        node.start()

        def on(section: str) -> list[tuple[str, bytes]]:
            with lock:
                return [(t, p) for t, p in received if t.split("/")[3] == section]

        try:
            deadline = time.monotonic() + 60
            while not on("clips") and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            node.stop()  # flushes the spool: the clip's announcement, and the `end` of every open alert
            time.sleep(0.5)
            client.loop_stop()
            client.disconnect()

    alerts = [json.loads(p) for _, p in on("alerts")]
    started = sorted(a["alert_id"] for a in alerts if a["state"] == "start")
    assert sorted(a["alert_id"] for a in alerts if a["state"] == "end") == started  # none left open at the stop
    start = next(a for a in alerts if a["state"] == "start")
    assert start["rule"] == "walkers" and start["snapshot"] is True and start["objects"]
    assert all(o["label"] == "person" for o in start["objects"])
    [(_, jpeg)] = [(t, p) for t, p in on("alert-snapshots") if t.endswith(f"/{start['alert_id']}")]
    snapshot = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape[1] == 640  # snapshots.max_width

    clip_topic, mp4 = on("clips")[0]
    assert clip_topic == f"smarteye/v1/clips/clips/cam/{start['alert_id']}"
    announcement = next(a for a in alerts if a["id"] == f"{start['alert_id']}:clip")
    assert announcement["state"] == "update" and announcement["clip"]["bytes"] == len(mp4)
    clip = announcement["clip"]
    assert start["start_time"] - PRE_S - KEYFRAME_S - 0.15 <= clip["start_time"] <= start["start_time"] - PRE_S + 0.15
    assert clip["end_time"] == pytest.approx(start["start_time"] + POST_S, abs=0.15)  # frames come every 0.1 s
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        duration = float(stream.duration * stream.time_base)
    assert frames[0].key_frame and (frames[0].width, frames[0].height) == (768, 576)
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
    assert PRE_S + POST_S - 0.2 <= duration <= PRE_S + POST_S + KEYFRAME_S + 0.3
    assert duration == pytest.approx(clip["end_time"] - clip["start_time"], abs=0.3)
    assert len(frames) >= 0.8 * duration * 10  # the 10 fps video, not a few stills
