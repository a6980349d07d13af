"""QGroundControl-style discovery of the edge's video over MAVLink (camera protocol v2), with real processes.

`smarteye edge` runs a drone stream whose telemetry link is `udpout:` to a ground station's port, with its
annotated video as MPEG-TS over UDP. A pymavlink client on that port plays QGroundControl: it hears the
camera component's HEARTBEAT (component 100), asks for CAMERA_INFORMATION and VIDEO_STREAM_INFORMATION
with MAV_CMD_REQUEST_MESSAGE, gets one COMMAND_ACK each, and plays the advertised URI with PyAV (FFmpeg,
as QGroundControl's GStreamer would). The tracked person is reported in CAMERA_TRACKING_IMAGE_STATUS.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import pytest

from edge.telemetry.mavlink_reader import ensure_mavlink2
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.ports import free_udp_port
from tests.support.edge_process import EdgeProcess, write_config

pytestmark = pytest.mark.slow


def _wait(link: Any, kind: str, condition=lambda m: True, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = link.recv_match(type=kind, blocking=True, timeout=0.5)
        if message is not None and condition(message):
            return message
    raise AssertionError(f"no {kind} within {timeout} s")


def test_a_mavlink_client_finds_the_stream_by_video_stream_information_and_plays_it(
    media, model_path, tmp_path: Path
) -> None:
    ensure_mavlink2()
    from pymavlink import mavutil

    mav = mavutil.mavlink
    link_port, video_port = free_udp_port(), free_udp_port()
    gcs = mavutil.mavlink_connection(f"udpin:127.0.0.1:{link_port}", source_system=255, source_component=190)
    with MosquittoBroker.secured(["drone-node"]) as broker:
        config = write_config(
            tmp_path / "edge.yaml",
            node="drone-node",
            sources=[{
                "name": "drone", "url": str(media("vtest.avi")), "loop": True, "realtime": True,
                "geo": {"telemetry": {"source": "mavlink", "mavlink_url": f"udpout:127.0.0.1:{link_port}"},
                        "camera": {"hfov_deg": 70}},
            }],
            detector={"model": str(model_path), "imgsz": 320},
            mqtt={**broker.client_settings("drone-node"), "spool_dir": str(tmp_path / "spool")},
            video={"whep": {"port": 0}, "udp_outputs": {"drone": f"udp://127.0.0.1:{video_port}"}},
        )  # fmt: skip
        with EdgeProcess(config, tmp_path / "edge.log") as edge:
            camera = _wait(gcs, "HEARTBEAT", lambda m: m.get_srcComponent() == 100, 60)
            assert camera.type == mav.MAV_TYPE_CAMERA and camera.get_srcSystem() == 1
            time.sleep(3)  # the first frames: the stream's size is known

            def ask(message_id: int, kind: str) -> Any:
                """One request, one COMMAND_ACK, then the message (recv_match drops what it skips: in order)."""
                gcs.mav.command_long_send(1, 100, mav.MAV_CMD_REQUEST_MESSAGE, 0, message_id, 0, 0, 0, 0, 0, 0)
                ack = _wait(gcs, "COMMAND_ACK", lambda m: m.command == mav.MAV_CMD_REQUEST_MESSAGE, 10)
                assert ack.result == mav.MAV_RESULT_ACCEPTED, edge.log
                return _wait(gcs, kind, timeout=10)

            info = ask(mav.MAVLINK_MSG_ID_CAMERA_INFORMATION, "CAMERA_INFORMATION")
            assert info.flags & mav.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM and info.resolution_h == 768
            stream = ask(mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, "VIDEO_STREAM_INFORMATION")
            assert stream.type == mav.VIDEO_STREAM_TYPE_MPEG_TS and (stream.resolution_h, stream.resolution_v) == (
                768,
                576,
            )
            assert stream.uri == f"udp://0.0.0.0:{video_port}" and stream.flags & mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING
            gcs.mav.command_long_send(1, 100, 31999, 0, 0, 0, 0, 0, 0, 0, 0)  # not a camera command
            assert _wait(gcs, "COMMAND_ACK", lambda m: m.command == 31999, 10).result == mav.MAV_RESULT_UNSUPPORTED

            frames = []
            with av.open(stream.uri, options={"timeout": "10000000"}) as container:  # listen where it was told
                for frame in container.decode(video=0):
                    frames.append((frame.width, frame.height))
                    if len(frames) >= 10:
                        break
            assert frames and set(frames) == {(768, 576)}

            tracking = _wait(gcs, "CAMERA_TRACKING_IMAGE_STATUS", timeout=30)
            assert tracking.tracking_status == mav.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE
            assert (
                0 <= tracking.rec_top_x < tracking.rec_bottom_x <= 1
                and 0 <= tracking.rec_top_y < tracking.rec_bottom_y <= 1
            )
        assert edge.stop() == 0
    gcs.close()
