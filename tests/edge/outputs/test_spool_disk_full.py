"""The spool on a really full disk: a 1 MiB tmpfs mounted for the test (skipped where mounting is not
allowed), filled with a file until ENOSPC, then the file removed.  The real error is reported once (not
masked as "cannot rollback - no transaction is active"), counted, what could not be written is held and
written in order once there is room; a spool that cannot be opened for lack of space is not set aside as
corrupt.  The last test runs a real MqttPublisher against a private Mosquitto: nothing is lost."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.outputs.mqtt_publisher import MqttPublisher
from edge.outputs.spool import Spool
from smarteye.config.mqtt import MqttConfig
from smarteye.sim.broker import MosquittoBroker, find_mosquitto
from tests.support.ingest import wait_until
from tests.support.secure_broker import paho_client
from tests.support.secure_mqtt import report_figure

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own (root, or CAP_SYS_ADMIN, is needed to mount it)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; removing it gives the room back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 1024)
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_reported_once_counted_and_loses_nothing_once_room_returns(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(small_disk / "edge.sqlite", 10_000)
    try:
        for i in range(5):
            spool.append("t/before", f"before-{i}".encode() * 20, 1)
        filler = fill(small_disk)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="edge.outputs.spool"):
            for i in range(200):  # issue 12: raised "cannot rollback - no transaction is active" each time
                spool.append("t/during", f"during-{i}".encode() * 20, 1)
            assert spool.disk_full >= 1 and spool.held == 200 and len(spool) == 205
            assert spool.ack_many([1, 2]) == 2  # delivered meanwhile: its delete waits for room too
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and "database or disk is full" in errors[0], errors
            assert not any("rollback" in r.getMessage() for r in caplog.records)
            filler.unlink()
            spool.flush_held()
        assert spool.held == 0 and len(spool) == 203
        payloads = [m.payload for m in spool.peek(1000)]
        expected = [f"before-{i}".encode() * 20 for i in range(2, 5)] + [
            f"during-{i}".encode() * 20 for i in range(200)
        ]
        assert payloads == expected  # in order, none lost, the delivered ones gone
        assert any("room again" in r.getMessage() for r in caplog.records)
    finally:
        spool.close()
    with Spool(small_disk / "edge.sqlite", 10_000) as reopened:  # and it is all on disk
        assert len(reopened) == 203


def test_a_spool_that_cannot_be_opened_for_lack_of_space_is_not_set_aside(small_disk: Path) -> None:
    path = small_disk / "edge.sqlite"
    with Spool(path, 1000) as spool:
        for i in range(20):
            spool.append("t", f"backlog-{i}".encode() * 30, 1)
    filler = fill(small_disk)
    try:
        # Opening may work (reading needs no room) or fail: either way the backlog is never set aside.
        with Spool(path, 1000) as spool:
            assert len(spool) == 20
    except RuntimeError as error:
        assert str(path) in str(error) and "bytes free on its disk" in str(error)  # the real cause, and the hint
    assert not list(small_disk.glob("*.corrupt-*"))
    filler.unlink()
    with Spool(path, 1000) as spool:
        assert [m.payload for m in spool.peek(100)] == [f"backlog-{i}".encode() * 30 for i in range(20)]


def test_a_corrupt_spool_is_still_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with Spool(path, 100) as spool:
        assert len(spool) == 0
    assert len(list(tmp_path.glob("edge.sqlite.corrupt-*"))) == 1


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_events_published_while_the_disk_is_full_all_arrive_once_there_is_room(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with MosquittoBroker.secured(["node"], prefix="full") as broker:
        received: list[bytes] = []
        subscriber = paho_client(broker, client_id=f"sub-{uuid.uuid4().hex[:6]}")
        subscriber.on_message = lambda c, u, m: received.append(m.payload)
        subscriber.on_connect = lambda c, *a: c.subscribe("full/node/events/#", qos=1)
        subscriber.connect(broker.host, broker.port)
        subscriber.loop_start()
        config = MqttConfig.model_validate({**broker.client_settings("node"), "spool_dir": str(small_disk),
                                            "reconnect_min_s": 0.1, "confirmations": False})  # fmt: skip
        publisher = MqttPublisher(config, f"edge-{uuid.uuid4().hex[:6]}", "full/node/availability", "edge")
        try:
            publisher.start()
            assert wait_until(lambda: publisher.connected, 10)
            filler = fill(small_disk)
            sent = [f"event-{i}".encode() * 20 for i in range(300)]
            for payload in sent:
                publisher.publish_event("full/node/events/cam", payload)
            stats = publisher.stats()
            assert stats["disk_full"] >= 1 and stats["spool_errors"] == 0 and stats["pending"] == 300
            assert received == []  # held in memory, not sent: only what is on disk is sent (and removed on PUBACK)
            filler.unlink()
            assert wait_until(lambda: len(received) >= 300, 30), (len(received), publisher.stats())
            assert received[:300] == sent  # in order, none lost
            report_figure("spool_disk_full", published=len(sent), delivered=len(received),
                          lost=len(set(sent) - set(received)), disk_full_refusals=stats["disk_full"],
                          error_lines=sum("disk is full" in r.getMessage() for r in caplog.records
                                          if r.levelno >= logging.ERROR),
                          spool_errors=stats["spool_errors"])  # fmt: skip
            # Deletes on PUBACK may meet a full disk again (the WAL grows): they are retried, not lost.
            assert wait_until(lambda: publisher.stats()["held"] == 0 and publisher.stats()["pending"] == 0, 10)
        finally:
            publisher.stop()
            subscriber.loop_stop()
            subscriber.disconnect()
