"""MavlinkReader on the real MAVLink logs in $SMARTEYE_ASSETS/telemetry (expected values read from the
same logs independently with pymavlink), on seeded garbage, and on a live UDP link fed by pymavlink
peers that send the gimbal/camera messages no real log here carries."""

from __future__ import annotations

import math
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from pymavlink import mavutil

from edge.assets import assets_root
from edge.telemetry.mavlink_reader import MavlinkReader, ensure_mavlink2
from edge.telemetry.vehicle import History, angle_diff, euler_deg_to_quaternion, fov_deg, quaternion_to_euler_deg

ensure_mavlink2()  # the peers below send GIMBAL_DEVICE_ATTITUDE_STATUS (id 285): MAVLink 2 only


def _telemetry(name: str) -> Path:
    root = assets_root()
    path = root / "telemetry" / name if root else None
    if path is None or not path.is_file():
        pytest.skip(f"telemetry log {name} not found: set SMARTEYE_ASSETS to the folder holding telemetry/")
    return path


def _read_log(path: Path, **kwargs: Any) -> list[Any]:
    """Every message of a log, read by pymavlink alone (the independent expectation)."""
    conn = mavutil.mavlink_connection(str(path), **kwargs)
    out = []
    while (msg := conn.recv_match()) is not None:
        out.append(msg)
    conn.close()
    return out


def _from(msgs: list[Any], mtype: str, sid: int = 1, cid: int = 1) -> list[Any]:
    return [m for m in msgs if m.get_type() == mtype and m.get_srcSystem() == sid and m.get_srcComponent() == cid]


def _assert_position(state: Any, gpi: Any) -> None:
    assert state.lat == pytest.approx(gpi.lat * 1e-7, abs=1e-9)
    assert state.lon == pytest.approx(gpi.lon * 1e-7, abs=1e-9)
    assert state.alt_amsl_m == pytest.approx(gpi.alt * 1e-3, abs=1e-6)
    assert state.alt_rel_m == pytest.approx(gpi.relative_alt * 1e-3, abs=1e-6)


def _assert_attitude(state: Any, att: Any) -> None:
    for got, rad in ((state.roll_deg, att.roll), (state.pitch_deg, att.pitch), (state.yaw_deg, att.yaw)):
        assert abs(angle_diff(got, math.degrees(rad))) < 1e-6


@pytest.fixture(scope="module")
def vtol() -> tuple[MavlinkReader, list[Any], float]:
    path = _telemetry("uavlogviewer_vtol.tlog")
    reader = MavlinkReader(str(path), history_s=400.0)
    max_rel = -math.inf
    count = 0
    for msg in reader.iter_replay():
        count += 1
        if msg.get_type() == "GLOBAL_POSITION_INT":
            max_rel = max(max_rel, reader.state().alt_rel_m)
    assert count == 23_894
    return reader, _read_log(path), max_rel


def test_vtol_latest_state_matches_log(vtol: tuple[MavlinkReader, list[Any], float]) -> None:
    reader, msgs, max_rel = vtol
    assert reader.vehicles() == [1]
    state = reader.state()
    assert state is not None and state.system_id == 1
    _assert_position(state, _from(msgs, "GLOBAL_POSITION_INT")[-1])
    _assert_attitude(state, _from(msgs, "ATTITUDE")[-1])
    heartbeat = _from(msgs, "HEARTBEAT")[-1]
    assert state.flight_mode == mavutil.mode_string_v10(heartbeat)
    assert state.armed == bool(heartbeat.base_mode & 128)
    assert (state.vehicle_type, state.autopilot) == ("FIXED_WING", "ARDUPILOTMEGA")
    assert state.gps_fix_type == _from(msgs, "GPS_RAW_INT")[-1].fix_type
    assert state.link_ok
    assert max_rel == pytest.approx(63.35, abs=0.5)
    assert reader.messages["GLOBAL_POSITION_INT"] == 807
    assert reader.bad_data == 0 and reader.errors == 0


def test_vtol_state_at_across_flight(vtol: tuple[MavlinkReader, list[Any], float]) -> None:
    reader, msgs, _ = vtol
    for mtype, check in (("GLOBAL_POSITION_INT", _assert_position), ("ATTITUDE", _assert_attitude)):
        by_time = {m._timestamp: m for m in _from(msgs, mtype)}  # the last message wins a shared timestamp
        times = sorted(by_time)
        for i in range(5, len(times) - 1, len(times) // 9):
            check(reader.state_at(1, times[i]), by_time[times[i]])
            # Halfway between two samples: the mean (attitude wrap-safe, so compare via angle_diff).
            a, b = by_time[times[i]], by_time[times[i + 1]]
            mid = reader.state_at(1, (times[i] + times[i + 1]) / 2)
            if mtype == "GLOBAL_POSITION_INT":
                # abs tolerances: epoch-second floats resolve ~0.2 µs and samples can be 3 ms apart.
                assert mid.lat == pytest.approx((a.lat + b.lat) * 0.5e-7, abs=1e-8)
                assert mid.alt_rel_m == pytest.approx((a.relative_alt + b.relative_alt) * 0.5e-3, abs=1e-3)
            else:
                half = math.degrees(a.yaw) + angle_diff(math.degrees(b.yaw), math.degrees(a.yaw)) / 2
                assert abs(angle_diff(mid.yaw_deg, half)) < 1e-3
    first, last = msgs[0]._timestamp, msgs[-1]._timestamp
    assert reader.state_at(1, first - 10.0) is None
    assert reader.state_at(1, last + 10.0) is None
    assert reader.state_at(1, last + 1.0) is not None  # within stale_after_s: latest values held


def test_ardusub_small_mavlink2() -> None:
    path = _telemetry("ardusub_small.tlog")
    reader = MavlinkReader(str(path))
    assert reader.replay() == 35_916
    msgs = _read_log(path)
    assert reader.vehicles() == [1]  # GCS 255, camera 100 and companion 194 are not vehicles
    state = reader.state(1)
    heartbeat = _from(msgs, "HEARTBEAT")[-1]
    assert state.flight_mode == mavutil.mode_string_v10(heartbeat) == "MANUAL"
    assert state.armed == bool(heartbeat.base_mode & 128)
    assert any(m.base_mode & 128 for m in _from(msgs, "HEARTBEAT"))  # it was armed at some point
    assert state.vehicle_type == "SUBMARINE"
    _assert_attitude(state, _from(msgs, "ATTITUDE")[-1])
    _assert_position(state, _from(msgs, "GLOBAL_POSITION_INT")[-1])
    mount = _from(msgs, "MOUNT_STATUS")
    assert mount, "ardusub_small.tlog is known to carry MOUNT_STATUS"
    assert state.gimbal_source == "MOUNT_STATUS" and state.gimbal_yaw_frame == "vehicle"
    assert state.gimbal_pitch_deg == pytest.approx(mount[-1].pointing_a / 100)
    assert state.gimbal_yaw_deg == pytest.approx(mount[-1].pointing_c / 100)
    stream = [m for m in msgs if m.get_type() == "VIDEO_STREAM_STATUS"][-1]
    assert state.camera_hfov_deg == pytest.approx(stream.hfov)
    assert reader.bad_data == 4 and reader.errors == 0


def test_ardusub_bad_data_survives() -> None:
    path = _telemetry("ardusub_bad_data.tlog")
    reader = MavlinkReader(str(path))
    total = reader.replay()
    # Counted once with pymavlink's own parser (mavutil, every message incl. BAD_DATA): 52,103 in all.
    assert reader.bad_data == 1967
    assert sum(reader.messages.values()) == total == 52_103
    state = reader.state()
    assert state is not None and state.gps_fix_type == 0
    assert state.lat is None and state.lon is None  # 0/0 is "no position", not the Gulf of Guinea
    assert state.roll_deg is not None
    assert reader.errors == 0, reader.last_error


def test_px4_raw_stream() -> None:
    path = _telemetry("px4_mavlink2_3412_packets.raw")
    reader = MavlinkReader(str(path))
    assert reader.replay() == 3412
    assert reader.messages["GLOBAL_POSITION_INT"] == 505
    expected = [m for m in _read_log(path, notimestamps=True) if m.get_type() == "GLOBAL_POSITION_INT"]
    state = reader.state()
    assert (state.autopilot, state.vehicle_type) == ("PX4", "FIXED_WING")
    _assert_position(state, expected[-1])
    middle = expected[250]
    # No timestamps in a raw stream: time is the autopilot's boot time (time_boot_ms).
    _assert_position(reader.state_at(1, middle.time_boot_ms / 1000), middle)
    assert reader.errors == 0


def test_raw_realtime_replay_is_paced() -> None:
    path = _telemetry("px4_mavlink2_3412_packets.raw")
    reader = MavlinkReader(str(path))
    reader.start()
    time.sleep(0.6)
    reader.stop()
    assert not reader.running
    n = sum(reader.messages.values())
    assert 0 < n < 3412  # the log spans ~10 s; only ~0.6 s of it may have been played
    state = reader.state()
    if state is not None:
        assert state.time < 12658.2 + 2.0


def test_garbage_bytes(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.raw"
    garbage.write_bytes(random.Random(1234).randbytes(20_000))
    reader = MavlinkReader(str(garbage))
    total = reader.replay()
    assert total > 0 and sum(reader.messages.values()) == total
    assert reader.bad_data > 500
    assert set(reader.messages) <= {"BAD_DATA", "UNKNOWN"}
    assert reader.vehicles() == [] and reader.state() is None


# ---------------------------------------------------------------------------------------- live link

_CAMERA = {
    "focal_length": 4.5,
    "sensor_size_h": 6.17,
    "sensor_size_v": 4.55,
    "resolution_h": 4000,
    "resolution_v": 3000,
}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send_round(peer: Any, sid: int, gimbal: tuple[float, float, float], flags: int) -> None:
    ml = mavutil.mavlink
    mav = peer.mav
    mav.srcComponent = ml.MAV_COMP_ID_AUTOPILOT1
    mav.heartbeat_send(ml.MAV_TYPE_QUADROTOR, ml.MAV_AUTOPILOT_ARDUPILOTMEGA, 128 | 1, 5, ml.MAV_STATE_ACTIVE)
    mav.global_position_int_send(1000, int((47.0 + sid) * 1e7), int(8.5e7), 500_000, 100_000 + sid, 300, 400, -50, 9000)
    mav.attitude_send(1000, math.radians(5), math.radians(-3), math.radians(170 + sid), 0, 0, 0)
    mav.srcComponent = ml.MAV_COMP_ID_GIMBAL
    mav.heartbeat_send(ml.MAV_TYPE_GIMBAL, ml.MAV_AUTOPILOT_INVALID, 0, 0, ml.MAV_STATE_ACTIVE)
    q = euler_deg_to_quaternion(*gimbal)
    mav.gimbal_device_attitude_status_send(0, 0, 1000, flags, q, 0.0, 0.0, 0.0, 0)
    mav.srcComponent = ml.MAV_COMP_ID_CAMERA
    mav.camera_information_send(
        1000, b"SmartEye".ljust(32, b"\0"), b"test".ljust(32, b"\0"), 0, *_CAMERA.values(), 0, 0, 0, b""
    )
    # A companion computer on the same system reporting some other position must not move the vehicle.
    mav.srcComponent = ml.MAV_COMP_ID_ONBOARD_COMPUTER
    mav.global_position_int_send(1000, 0, 0, 0, 0, 0, 0, 0, 0)


def test_live_udp_two_vehicles() -> None:
    ml = mavutil.mavlink
    port = _free_udp_port()
    reader = MavlinkReader(f"udpin:127.0.0.1:{port}", stale_after_s=0.5)
    gimbals = {1: ((2.0, -35.0, 40.0), ml.GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME), 2: ((-1.0, -80.0, -120.0), 0)}
    peers = {sid: mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=sid) for sid in (1, 2)}
    gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255, source_component=190)
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    reader.start()
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            gcs.mav.heartbeat_send(ml.MAV_TYPE_GCS, ml.MAV_AUTOPILOT_INVALID, 0, 0, 0)
            for sid, peer in peers.items():
                _send_round(peer, sid, *gimbals[sid])
            junk.sendto(random.Random(7).randbytes(300), ("127.0.0.1", port))  # between valid frames
            time.sleep(0.05)
            states = [reader.state(sid) for sid in (1, 2)]
            complete = [
                s is not None and s.camera_hfov_deg is not None and s.gimbal_yaw_deg is not None for s in states
            ]
            if all(complete) and reader.bad_data > 0 and reader.messages.get("ATTITUDE", 0) >= 4:
                break
        assert sorted(reader.vehicles()) == [1, 2]
        for sid in (1, 2):
            state = reader.state(sid)
            assert state.link_ok and not reader.is_stale(sid)
            assert state.lat == pytest.approx(47.0 + sid) and state.lon == pytest.approx(8.5)
            assert state.alt_rel_m == pytest.approx(100.0 + sid / 1000)
            assert state.groundspeed_mps == pytest.approx(5.0) and state.climb_mps == pytest.approx(0.5)
            assert state.yaw_deg == pytest.approx(170 + sid) and state.roll_deg == pytest.approx(5)
            assert state.armed and state.vehicle_type == "QUADROTOR" and state.flight_mode == "LOITER"
            (roll, pitch, yaw), flags = gimbals[sid]
            assert state.gimbal_source == "GIMBAL_DEVICE_ATTITUDE_STATUS"
            assert state.gimbal_roll_deg == pytest.approx(roll, abs=1e-3)
            assert state.gimbal_pitch_deg == pytest.approx(pitch, abs=1e-3)
            assert state.gimbal_yaw_deg == pytest.approx(yaw, abs=1e-3)
            assert state.gimbal_yaw_frame == ("earth" if flags else "vehicle")
            assert state.camera_hfov_deg == pytest.approx(math.degrees(2 * math.atan(6.17 / 9.0)), abs=1e-3)
            assert state.camera_vfov_deg == pytest.approx(math.degrees(2 * math.atan(4.55 / 9.0)), abs=1e-3)
            assert (state.camera_resolution_h, state.camera_resolution_v) == (4000, 3000)
        assert reader.bad_data > 0 and reader.messages["HEARTBEAT"] > 0, reader.messages
        # Silence: both vehicles go stale and lose link_ok after stale_after_s.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not (reader.is_stale(1) and reader.is_stale(2)):
            time.sleep(0.1)
        for sid in (1, 2):
            assert reader.is_stale(sid) and not reader.state(sid).link_ok
    finally:
        reader.stop()
        for conn in (*peers.values(), gcs):
            conn.close()
        junk.close()
    assert not reader.running


# ------------------------------------------------------------------------------- pure interpolation


def _packed(mav: Any, msg: Any, t: float) -> Any:
    """Encode with the sender's header, decode again: what a link would deliver, stamped at t."""
    parser = mavutil.mavlink.MAVLink(None)
    (decoded,) = parser.parse_buffer(msg.pack(mav))
    decoded._timestamp = t
    return decoded


def test_interpolation_on_constructed_samples() -> None:
    history = History((("x", "lin"), ("yaw", "a180"), ("hdg", "a360"), ("frame", "hold")), max_age_s=10, max_len=100)
    history.add(100.0, (0.0, 179.0, 359.0, "earth"))
    history.add(101.0, (10.0, -179.0, 1.0, "earth"))
    mid = history.at(100.5, max_gap_s=2.0)
    assert mid["x"] == pytest.approx(5.0)
    assert abs(angle_diff(mid["yaw"], 180.0)) < 1e-9  # across ±180, not through 0
    assert mid["hdg"] == pytest.approx(0.0, abs=1e-9) or mid["hdg"] == pytest.approx(360.0)
    quarter = history.at(100.25, max_gap_s=2.0)
    assert quarter["hdg"] == pytest.approx(359.5)
    assert history.at(101.5, max_gap_s=2.0)["x"] == 10.0  # just after: held
    assert history.at(104.0, max_gap_s=2.0) is None  # beyond the gap
    history.add(100.5, (99.0, 0.0, 0.0, "earth"))  # out of order: ignored, history stays sorted
    assert history.at(100.5, max_gap_s=2.0)["x"] == pytest.approx(5.0)
    for i in range(200):  # bounded by age and length
        history.add(102.0 + i, (0.0, 0.0, 0.0, "earth"))
    assert len(history) <= 11 and history.span()[0] >= 301.0 - 10.0

    # The same through the reader: yaw 359° → 1° from ATTITUDE messages of one vehicle.
    ml = mavutil.mavlink
    reader = MavlinkReader("constructed.tlog", stale_after_s=1.0)
    mav = ml.MAVLink(None, srcSystem=7, srcComponent=1)
    reader.process(_packed(mav, mav.heartbeat_encode(ml.MAV_TYPE_HEXAROTOR, ml.MAV_AUTOPILOT_PX4, 0, 0, 4), 10.0))
    reader.process(_packed(mav, mav.attitude_encode(0, 0.0, 0.0, math.radians(359.0), 0, 0, 0), 10.0))
    reader.process(_packed(mav, mav.attitude_encode(0, 0.0, 0.2, math.radians(1.0), 0, 0, 0), 10.2))
    reader.process(_packed(mav, mav.global_position_int_encode(0, 10_000_000, 1_799_999_000, 0, 0, 0, 0, 0, 0), 10.0))
    reader.process(_packed(mav, mav.global_position_int_encode(0, 10_001_000, -1_799_999_000, 0, 0, 0, 0, 0, 0), 10.2))
    state = reader.state_at(7, 10.1)
    assert state.time == 10.1 and abs(angle_diff(state.yaw_deg, 0.0)) < 1e-4  # float32 on the wire
    assert state.pitch_deg == pytest.approx(math.degrees(0.1))
    assert state.lat == pytest.approx(1.00005) and abs(angle_diff(state.lon, 180.0)) < 1e-6  # antimeridian
    assert state.autopilot == "PX4" and state.link_ok
    assert reader.state_at(7, 12.0) is None and reader.state_at(7, 8.0) is None
    assert reader.state_at(7, 11.0) is not None


def test_quaternion_and_fov_helpers() -> None:
    for angles in ((0.0, 0.0, 0.0), (10.0, -45.0, 170.0), (-30.0, 20.0, -90.0)):
        got = quaternion_to_euler_deg(euler_deg_to_quaternion(*angles))
        assert all(abs(angle_diff(g, a)) < 1e-9 for g, a in zip(got, angles, strict=True))
    assert fov_deg(36.0, 18.0) == pytest.approx(90.0)
    assert fov_deg(0.0, 4.0) is None and fov_deg(6.0, float("nan")) is None


def test_a_message_that_fails_to_decode_is_counted_and_the_next_one_still_lands() -> None:
    ml = mavutil.mavlink
    reader = MavlinkReader("constructed.tlog")
    autopilot = ml.MAVLink(None, srcSystem=3, srcComponent=ml.MAV_COMP_ID_AUTOPILOT1)
    gimbal = ml.MAVLink(None, srcSystem=3, srcComponent=ml.MAV_COMP_ID_GIMBAL)
    zero_q = gimbal.gimbal_device_attitude_status_encode(0, 0, 0, 0, [0.0] * 4, 0, 0, 0, 0)  # not a rotation
    reader.process(
        _packed(autopilot, autopilot.heartbeat_encode(ml.MAV_TYPE_QUADROTOR, ml.MAV_AUTOPILOT_PX4, 0, 0, 4), 5.0)
    )
    reader.process(_packed(gimbal, zero_q, 5.1))
    reader.process(_packed(autopilot, autopilot.attitude_encode(0, 0.0, 0.0, math.radians(30.0), 0, 0, 0), 5.2))
    assert reader.errors == 1 and reader.bad_data == 0
    assert reader.last_error is not None
    assert reader.last_error.startswith("GIMBAL_DEVICE_ATTITUDE_STATUS from 3/154: ValueError: quaternion")
    assert reader.messages == {"HEARTBEAT": 1, "GIMBAL_DEVICE_ATTITUDE_STATUS": 1, "ATTITUDE": 1}
    state = reader.state(3)
    assert state is not None and state.yaw_deg == pytest.approx(30.0) and state.gimbal_source is None
    assert reader.now() == 5.2  # a log's clock: its latest timestamp


def test_a_damaged_tlog_is_read_frame_by_frame_not_raised(tmp_path) -> None:
    """pymavlink's tlog indexer raised AttributeError on this file (found by tests/fuzz): the reader falls back to
    reading it frame by frame, counts the error and carries on."""
    path = tmp_path / "damaged.tlog"
    path.write_bytes(b"\x00" * 8 + b"\xfd" + b"\x00" * 9)
    reader = MavlinkReader(str(path))
    assert reader.replay() >= 0
    assert reader.errors == 1 and "indexing" in reader.last_error
