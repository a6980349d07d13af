"""Regenerate the fuzz seed corpus in tests/fuzz/corpus/ (small files, committed):

    .venv/bin/python -m tests.fuzz.make_corpus

Seeds are made by code: hand-built packets from the encoders and message factories, plus real captures cut
small (one KLV packet of each standard, the first few hundred bytes of MAVLink logs) when $SMARTEYE_ASSETS
(default ../shared) is there. The fuzz targets mutate these, so the interesting structure (valid keys,
checksums, CRCs, JSON shapes) is reached without the large asset files themselves.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
from pathlib import Path

from edge.assets import assets_root
from edge.telemetry.klv import EG0104_KEY, ST0601_KEY
from edge.telemetry.klv_codec import checksum16, encode_ber_length
from edge.telemetry.vmti import encode_vmti_packet, encode_vmti_set
from smarteye.media.packet import EncodedPacket
from smarteye.wire import topics
from smarteye.wire.messages import Telemetry
from smarteye.wire.telemetry import SensorMetadata
from smarteye.wire.vmti import VmtiReport, VmtiTarget
from tests.support.factories import make_availability, make_event, make_status

CORPUS = Path(__file__).resolve().parent / "corpus"
MAVLINK_CUT_BYTES = 600  # of each real log: a few dozen frames
PREFIX = "smarteye"


def st0601(items: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([tag]) + encode_ber_length(len(value)) + value for tag, value in items) + b"\x01\x02"
    head = ST0601_KEY + encode_ber_length(len(body) + 2)
    return head + body + checksum16(head + body).to_bytes(2, "big")


def eg0104(elements: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(bytes.fromhex(key) + encode_ber_length(len(value)) + value for key, value in elements)
    return EG0104_KEY + encode_ber_length(len(body)) + body


def klv_seeds() -> dict[str, bytes]:
    report = VmtiReport(
        time=1.7e9, system_name="seed", frame_width=1280, frame_height=720, targets_detected=2,
        targets=[VmtiTarget(id=1, centroid_px=(10, 20), box_px=(5, 15, 15, 25), confidence_pct=90, lat=1.5, lon=2.5,
                            hae_m=100.0, location_offset_deg=(0.01, -0.02), priority=3, history=4, algorithm_id=1)],
    )  # fmt: skip
    pose = [
        (2, (1_700_000_000_000_000).to_bytes(8, "big")),
        (5, (32768).to_bytes(2, "big")),
        (13, (1 << 30).to_bytes(4, "big", signed=True)),
        (14, (1 << 29).to_bytes(4, "big", signed=True)),
        (15, (5000).to_bytes(2, "big")),
        (16, (3000).to_bytes(2, "big")),
        (18, (1 << 31).to_bytes(4, "big")),
        (19, (-(1 << 29)).to_bytes(4, "big", signed=True)),
    ]
    seeds = {
        "st0601.bin": st0601(pose),
        "st0601_vmti.bin": st0601([*pose, (74, encode_vmti_set(report))]),
        "vmti.bin": encode_vmti_packet(report, length_bytes=4),
        "eg0104.bin": eg0104(
            [
                ("060e2b34010101030702010101050000", (1_700_000_000_000_000).to_bytes(8, "big")),
                ("060e2b34010101020420020101080000", struct.pack(">f", 12.5)),
                ("060e2b34010101030701020102040200", struct.pack(">d", 45.0)),
                ("060e2b34010101030701020102060200", struct.pack(">d", 7.0)),
                ("060e2b34010101010701100102000000", struct.pack(">f", 120.0)),
            ]
        ),
    }
    root = assets_root()
    if root is not None:
        import av

        for name, out in (("kwiver_h264_klv.ts", "real_st0601.bin"), ("kwiver_aphill_short.ts", "real_eg0104.bin")):
            path = root / "media" / name
            if path.exists():
                with av.open(str(path)) as container:
                    packet = next(p for p in container.demux(container.streams.data[0]) if p.size)
                    seeds[out] = bytes(packet)
    return seeds


def mavlink_seeds() -> dict[str, bytes]:
    root = assets_root()
    seeds: dict[str, bytes] = {}
    if root is None:
        return seeds
    for path in sorted((root / "telemetry").glob("*")):
        if path.suffix in (".tlog", ".raw"):
            seeds[path.stem + path.suffix.replace(".", "_") + ".bin"] = path.read_bytes()[:MAVLINK_CUT_BYTES]
    return seeds


def packet_seeds() -> dict[str, bytes]:
    return {
        "keyframe.bin": EncodedPacket("cam1", b"\x00\x00\x00\x01\x67\x42" + bytes(40), 90_000, True, 1.7e9, 640, 360)
        .to_wire(),
        "delta.bin": EncodedPacket("drone-1", b"\x00\x00\x01\x41" + bytes(20), 93_000, False, 1.7e9, 1920, 1080)
        .to_wire(),
    }  # fmt: skip


def config_seeds() -> dict[str, bytes]:
    example = Path(__file__).resolve().parents[2] / "configs" / "edge.example.yaml"
    seeds = {
        "minimal.yaml": b"node: n1\nsources:\n  - {name: cam, url: rtsp://u:p@cam:554/x}\n",
        "drone.yaml": b"node: n1\nsources:\n  - name: d\n    url: udp://@:5600\n    geo: {telemetry: {source: klv}}\n"
        b"mqtt: {url: 'mqtt://127.0.0.1:1883'}\ndetector: {model: yolov8n.pt, conf: 0.3}\n",
        "anchors.yaml": b"node: n1\nsources:\n  - &s {name: c, url: x.mp4, loop: true}\n  - {<<: *s, name: d}\n",
    }
    if example.exists():
        seeds["example.yaml"] = example.read_bytes()
    return seeds


def mqtt_seeds() -> dict[str, bytes]:
    """{topic, payload_b64}: one valid message of each kind under its topic (and a snapshot's JPEG start)."""
    event = make_event(event_id="e" * 32)
    telemetry = Telemetry(node="node1", stream="cam1", source="klv", sensor=SensorMetadata(standard="ST0601",
                          sensor_lat=1.0, sensor_lon=2.0), time=1.7e9)  # fmt: skip
    cases = {
        "event.json": (topics.events_topic(PREFIX, "node1", "cam1"), event.model_dump_json()),
        "status.json": (topics.status_topic(PREFIX, "node1", "cam1"), make_status().model_dump_json()),
        "availability.json": (topics.availability_topic(PREFIX, "node1"), make_availability().model_dump_json()),
        "telemetry.json": (topics.telemetry_topic(PREFIX, "node1", "cam1"), telemetry.model_dump_json()),
        "snapshot.json": (topics.snapshot_topic(PREFIX, "node1", "cam1", "e" * 32), b"\xff\xd8\xff\xe0" + bytes(12)),
    }
    return {
        name: json.dumps({"topic": topic, "payload_b64": base64.b64encode(
            payload if isinstance(payload, bytes) else payload.encode()).decode()}).encode()
        for name, (topic, payload) in cases.items()
    }  # fmt: skip


def main() -> None:
    for target, seeds in (("klv", klv_seeds()), ("mavlink", mavlink_seeds()), ("packet", packet_seeds()),
                          ("config", config_seeds()), ("mqtt", mqtt_seeds())):  # fmt: skip
        folder = CORPUS / target
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        print(f"{folder}: {len(seeds)} seeds, {sum(len(d) for d in seeds.values())} bytes")


if __name__ == "__main__":
    main()
