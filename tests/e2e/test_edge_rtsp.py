"""Acceptance (edge pipeline): real GStreamer RTSP cameras → `smarteye edge` → real Mosquitto."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.ports import free_tcp_port
from smarteye.sim.rtsp_server import RtspServer
from tests.support.edge_process import EdgeProcess, write_config
from tests.support.mqtt_recorder import MqttRecorder

pytestmark = pytest.mark.slow

VTEST_SIZE = (768, 576)


@pytest.fixture
def broker(secure_broker) -> MosquittoBroker:
    return secure_broker("test-edge")


def _config(tmp_path: Path, broker: MosquittoBroker, model: Path, sources: list[dict], **extra) -> Path:
    return write_config(
        tmp_path / "edge.yaml",
        node="test-edge",
        sources=sources,
        detector={"model": str(model), "imgsz": 640},
        events={"end_after_s": 1.5, "update_interval_s": 0.5, **extra.pop("events", {})},
        mqtt={**broker.client_settings("test-edge"), "spool_dir": str(tmp_path / "spool")},
        status_interval_s=1.0,
        **extra,
    )


def _check_event_fields(event: dict, started: float, size: tuple[int, int]) -> None:
    width, height = size
    box, norm = event["box"], event["box_norm"]
    assert (event["frame_width"], event["frame_height"]) == size
    assert 0 <= box["x1"] < box["x2"] <= width + 1 and 0 <= box["y1"] < box["y2"] <= height + 1, box
    assert all(-0.01 <= norm[k] <= 1.01 for k in ("x1", "y1", "x2", "y2")), norm
    assert isinstance(event["track_id"], int) and event["track_id"] >= 1
    assert started < event["capture_time"] <= event["detect_time"] <= event["publish_time"] < time.time()
    assert event["first_seen"] <= event["last_seen"] == event["capture_time"]
    assert event["pts"] is not None and event["model"] == "yolov8n.pt" and event["schema_version"] == 1
    assert 0 < event["score"] <= event["top_score"] <= 1


def test_rtsp_camera_people_new_then_end(broker, media, model_path, gst_available, tmp_path) -> None:
    started = time.time()
    recorder = MqttRecorder(broker, "smarteye/v1/#")
    with RtspServer({"/cam1": media("vtest.avi")}, loop=True) as camera:
        config = _config(tmp_path, broker, model_path, [{"name": "cam1", "url": camera.url("/cam1")}])
        with EdgeProcess(config, tmp_path / "edge.log") as edge:
            recorder.wait_for(
                lambda: recorder.events(type="end", label="person"), 150, f"a person `end` event\n{edge.log}"
            )
            live = recorder.statuses("cam1")
        assert edge.stop() == 0, edge.log
    recorder.close()

    news = recorder.events(type="new", stream="cam1")
    ends = recorder.events(type="end", stream="cam1")
    assert any(e["label"] == "person" for e in news)
    for event in news + ends:
        _check_event_fields(event, started, VTEST_SIZE)
    new_by_id = {e["event_id"]: e for e in news}
    for end in ends:  # every end closes an object announced before, same track
        assert end["event_id"] in new_by_id and new_by_id[end["event_id"]]["track_id"] == end["track_id"]
        assert end["end_reason"] in ("gone", "shutdown")
    ids = [e["id"] for e in recorder.events()]
    assert len(ids) == len(set(ids))
    assert any(s["state"] == "live" and (s["width"], s["height"]) == VTEST_SIZE for s in live)
    availability = [m.data["state"] for m in recorder.snapshot("availability")]
    assert availability[0] == "online" and availability[-1] == "offline"


def test_camera_outage_reconnects_while_other_stream_keeps_going(
    broker, media, model_path, gst_available, tmp_path
) -> None:
    recorder = MqttRecorder(broker, "smarteye/v1/#")
    flaky = RtspServer({"/cam1": media("vtest.avi")}, loop=True)
    steady = RtspServer({"/cam2": media("vtest.avi")}, loop=True)
    with flaky, steady:
        reconnect = {"initial_s": 0.5, "max_s": 2.0}
        config = _config(
            tmp_path,
            broker,
            model_path,
            [
                {"name": "flaky", "url": flaky.url("/cam1"), "reconnect": reconnect},
                # Capped below the camera's 10 fps: detection takes fewer frames than arrive, on any CPU.
                {"name": "steady", "url": steady.url("/cam2"), "reconnect": reconnect, "max_detection_fps": 4},
            ],
        )
        with EdgeProcess(config, tmp_path / "edge.log") as edge:
            recorder.wait_for(
                lambda: recorder.events(stream="flaky", type="new") and recorder.events(stream="steady", type="new"),
                120,
                f"events from both streams\n{edge.log}",
            )
            outage_start = time.time()
            flaky.stop()
            recorder.wait_for(
                lambda: any(
                    s["state"] == "reconnecting" and s["time"] > outage_start for s in recorder.statuses("flaky")
                ),
                30,
                "the flaky stream to report reconnecting",
            )
            time.sleep(6)
            outage_end = time.time()
            flaky.restart()
            recorder.wait_for(
                lambda: any(e["capture_time"] > outage_end for e in recorder.events(stream="flaky")),
                90,
                f"flaky events after the camera came back\n{edge.log}",
            )
        assert edge.stop() == 0

    reconnecting = [s for s in recorder.statuses("flaky") if s["state"] == "reconnecting"]
    assert reconnecting[0]["reason"], reconnecting[0]
    assert any(s["state"] == "live" and s["time"] > outage_end for s in recorder.statuses("flaky"))
    assert max(s["reconnects"] for s in recorder.statuses("flaky")) >= 1
    during = [e for e in recorder.events(stream="steady") if outage_start < e["capture_time"] < outage_end]
    assert during, "the steady stream produced no events while the other camera was down"
    lost = [e for e in recorder.events(stream="flaky", type="end") if e["end_reason"] == "stream_lost"]
    assert all(e["last_seen"] < outage_end for e in lost)
    assert "Traceback" not in edge.log
    # The steady camera offers more frames than its detection cap takes: they are dropped (latest frame wins),
    # not queued, so the capture to detection latency stays flat from the first event to the last.
    assert max(s["dropped"] for s in recorder.statuses("steady")) > 0
    steady = [e for e in recorder.events(stream="steady") if e["type"] != "end"]
    latencies = [e["detect_time"] - e["capture_time"] for e in steady]
    assert max(latencies) < 2.0, latencies
    half = len(latencies) // 2
    assert sorted(latencies[half:])[len(latencies[half:]) // 2] < 1.0, latencies


def test_bad_sources_fail_clearly_and_good_source_keeps_going(broker, media, model_path, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400)
    truncated = tmp_path / "truncated.ts"
    truncated.write_bytes(media("kwiver_aphill_short.ts").read_bytes()[:300_000])
    dead_port = free_tcp_port()
    secret = "s3cr3t-pw"
    recorder = MqttRecorder(broker, "smarteye/v1/#")
    config = _config(
        tmp_path,
        broker,
        model_path,
        [
            {"name": "good", "url": str(media("vtest.avi")), "loop": True},
            {
                "name": "unreachable",
                "url": f"rtsp://admin:{secret}@127.0.0.1:{dead_port}/cam",
                "reconnect": {"initial_s": 0.5, "max_s": 1.0},
                "open_timeout_s": 3,
            },
            {"name": "corrupt", "url": str(corrupt)},
            {"name": "missing", "url": str(tmp_path / "nowhere.mp4")},
            {"name": "truncated", "url": str(truncated)},
        ],
    )

    def state(stream: str) -> dict | None:
        statuses = recorder.statuses(stream)
        return statuses[-1] if statuses else None

    with EdgeProcess(config, tmp_path / "edge.log") as edge:
        recorder.wait_for(
            lambda: (
                all(
                    state(s) and state(s)["state"] in ("failed", "finished")
                    for s in ("corrupt", "missing", "truncated")
                )
                and (state("unreachable") or {}).get("reconnects", 0) >= 2
            ),
            60,
            f"bad sources to be reported\n{edge.log}",
        )
        failed_at = time.time()
        recorder.wait_for(
            lambda: any(e["capture_time"] > failed_at for e in recorder.events(stream="good")),
            90,
            f"events from the good source after the bad ones failed\n{edge.log}",
        )
        assert edge.proc is not None and edge.proc.poll() is None, "the node died"
        seen = {name: state(name) for name in ("corrupt", "missing", "truncated", "unreachable")}
    log = edge.log

    assert seen["corrupt"]["state"] == "failed" and "Invalid data" in seen["corrupt"]["reason"]
    assert seen["missing"]["state"] == "failed" and "file not found" in seen["missing"]["reason"]
    assert seen["truncated"]["state"] == "finished"  # decodes what is there, then ends cleanly
    unreachable = seen["unreachable"]
    assert unreachable["state"] == "reconnecting" and "refused" in unreachable["reason"].lower(), unreachable
    assert unreachable["url"] == f"rtsp://***@127.0.0.1:{dead_port}/cam"
    assert "Traceback" not in log
    assert secret not in log and all(secret not in str(m.data) for m in recorder.snapshot())
    for name in ("corrupt", "missing", "unreachable"):
        assert any(f"source {name}:" in line for line in log.splitlines()), log
    recorder.close()
