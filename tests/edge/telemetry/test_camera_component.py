"""The edge's MAVLink camera component: one COMMAND_ACK per command addressed to it, none for others' commands,
and the tracked target reported in image and ground coordinates."""

from __future__ import annotations

import time
from typing import Any

from edge.telemetry.camera_component import MavlinkCamera, TargetBoard, TrackedTarget, VideoStream
from edge.telemetry.mavlink_reader import ensure_mavlink2

ensure_mavlink2()
from pymavlink import mavutil  # noqa: E402

mav = mavutil.mavlink


def _command(command: int, target_component: int, *params: float) -> Any:
    message = mav.MAVLink_command_long_message(1, target_component, command, 0, *(list(params) + [0] * 7)[:7])
    message._header = mav.MAVLink_header(message.id, srcSystem=255, srcComponent=190)  # as if received
    return message


def test_commands_for_the_camera_are_answered_once_and_others_are_left_to_their_component() -> None:
    video = VideoStream(name="drone", uri="udp://0.0.0.0:5600", width=1280, height=720, fps=29.97, hfov_deg=70)
    camera = MavlinkCamera(lambda: video, TargetBoard())
    sent: list[Any] = []
    camera.on_message(_command(mav.MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION, 100), sent.append)
    assert [m.get_type() for m in sent] == ["COMMAND_ACK", "VIDEO_STREAM_INFORMATION"]
    assert sent[0].result == mav.MAV_RESULT_ACCEPTED and sent[0].target_system == 255
    assert sent[1].uri == "udp://0.0.0.0:5600" and sent[1].hfov == 70 and sent[1].framerate > 29.9
    sent.clear()
    camera.on_message(_command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1, 1), sent.append)  # the autopilot's
    camera.on_message(_command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1), sent.append)  # everyone's, not a camera's
    assert sent == []
    camera.on_message(_command(mav.MAV_CMD_REQUEST_MESSAGE, 0, mav.MAVLINK_MSG_ID_CAMERA_INFORMATION), sent.append)
    assert [m.get_type() for m in sent] == ["COMMAND_ACK", "CAMERA_INFORMATION"], "a broadcast request it can answer"
    sent.clear()
    camera.on_message(_command(mav.MAV_CMD_REQUEST_MESSAGE, 100, mav.MAVLINK_MSG_ID_HOME_POSITION), sent.append)
    assert [(m.get_type(), m.result) for m in sent] == [("COMMAND_ACK", mav.MAV_RESULT_DENIED)]


def test_the_tracked_target_is_reported_in_the_image_and_on_the_ground_while_fresh() -> None:
    board = TargetBoard(stale_after_s=2.0)
    camera = MavlinkCamera(lambda: None, board)
    sent: list[Any] = []
    camera.tick(sent.append)
    assert [m.get_type() for m in sent] == ["HEARTBEAT"] and sent[0].type == mav.MAV_TYPE_CAMERA
    board.put(TrackedTarget((0.4, 0.3, 0.5, 0.6), lat=36.1234567, lon=127.7654321, uncertainty_m=4.5, time=time.time()))
    sent.clear()
    camera._next_tracking = 0.0
    camera.tick(sent.append)
    image, geo = sent
    assert (image.rec_top_x, image.rec_bottom_y) == (
        0.4,
        0.6,
    ) and image.tracking_mode == mav.CAMERA_TRACKING_MODE_RECTANGLE
    assert (geo.lat, geo.lon, geo.h_acc) == (361234567, 1277654321, 4.5)
    board.put(TrackedTarget((0.4, 0.3, 0.5, 0.6), time=time.time() - 5))
    assert board.get() is None, "a target not seen for a while is not reported"
