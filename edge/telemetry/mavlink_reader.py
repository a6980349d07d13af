"""MAVLink telemetry link → per-vehicle `VehicleState`, with a bounded time-indexed history so a video
frame can be matched to the telemetry of its own capture time.

This module is the link: it reads a live link (UDP, TCP, serial) on a background thread that never
dies (errors are counted, the link reopened), or replays a log (.tlog with its own timestamps, or a raw
byte stream); it counts every message by type and the garbage (BAD_DATA), never raising on it; and it
dispatches each message of a decoded type to the fleet (`mavlink_fleet`: which sender is which vehicle,
which source wins, history), which turns it into state fields with `mavlink_decoders`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymavlink import mavutil

from edge.telemetry.mavlink_decoders import DECODERS
from edge.telemetry.mavlink_fleet import Fleet
from smarteye.wire.telemetry import VehicleState

log = logging.getLogger(__name__)

_NET_SCHEMES = ("udpin:", "udpout:", "udp:", "udpbcast:", "tcp:", "tcpin:")
_MAX_TYPES = 256  # message-type counter keys; unknown ids all count as "UNKNOWN"
_MAX_PACED_GAP_S = 10.0  # realtime replay skips longer silences in a log


def ensure_mavlink2() -> None:
    """Switch pymavlink to its MAVLink 2 dialect (process-wide, as pymavlink itself does on the first
    MAVLink 2 frame): the MAVLink 1 modules lack messages with ids > 255 such as GIMBAL_DEVICE_*."""
    if getattr(mavutil.mavlink, "WIRE_PROTOCOL_VERSION", "") != "2.0":
        os.environ["MAVLINK20"] = "1"
        mavutil.set_dialect(mavutil.current_dialect)


class MavlinkReader:
    """Turns one MAVLink link or log into per-vehicle state and time-indexed history.

    url: `udpin:0.0.0.0:14550`, `udpout:host:port`, `tcp:host:port`, `tcpin:host:port`, a serial
    device (`/dev/ttyUSB0` or `/dev/ttyUSB0,57600`), a `.tlog` file, or a raw byte log (`.raw`, or
    any file with raw=True). Live links: start()/stop(). Files: replay() (or start() for a paced
    background replay). A udpout link sends a 1 Hz heartbeat (heartbeat=None means "only for
    udpout"), because a UDP server only streams to peers it has heard from.
    """

    def __init__(
        self,
        url: str,
        stale_after_s: float = 2.0,
        history_s: float = 60.0,
        *,
        raw: bool = False,
        max_samples: int = 10_000,
        heartbeat: bool | None = None,
    ) -> None:
        ensure_mavlink2()
        self.url = url
        self.history_s = float(history_s)
        self.max_samples = int(max_samples)
        self._kind, self._device, self._baud = self._parse_url(url, raw)
        self._heartbeat = heartbeat if heartbeat is not None else url.startswith("udpout:")
        self._fleet = Fleet(float(stale_after_s), self.history_s, self.max_samples)
        self._lock = threading.Lock()  # guards the counters
        self._messages: dict[str, int] = {}
        self._bad_data = 0
        self._errors = 0
        self._last_error: str | None = None
        self._log_now: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._components: list[Any] = []  # e.g. MavlinkCamera: answer on this link as a component of the vehicle

    @property
    def stale_after_s(self) -> float:
        """Silence after which a vehicle is stale, its link not ok, and history no longer extrapolated."""
        return self._fleet.stale_after_s

    @stale_after_s.setter
    def stale_after_s(self, value: float) -> None:
        self._fleet.stale_after_s = float(value)

    # ----------------------------------------------------------------- opening

    @staticmethod
    def _parse_url(url: str, raw: bool) -> tuple[str, str, int]:
        """(kind, device, baud) with kind one of net, tlog, raw, serial."""
        if not url:
            raise ValueError("empty MAVLink url")
        if url.startswith(_NET_SCHEMES):
            return "net", url, 0
        path, _, baud = url.partition(",")
        lower = path.lower()
        if raw or lower.endswith(".raw"):
            return "raw", path, 0
        if lower.endswith((".tlog", ".mavlink")) or Path(path).is_file():
            return "tlog", path, 0
        try:
            return "serial", path, int(baud) if baud else 115200
        except ValueError:
            raise ValueError(f"bad baud rate in MAVLink url {url!r}") from None

    @property
    def is_file(self) -> bool:
        return self._kind in ("tlog", "raw")

    def _open(self) -> Any:
        """A pymavlink connection with robust parsing (bad bytes become BAD_DATA, not exceptions)."""
        if self._kind == "raw":
            # mavlogfile directly: mavlink_connection() would take a `.bin` name for a DataFlash log.
            conn = mavutil.mavlogfile(self._device, notimestamps=True, robust_parsing=True)
        elif self._kind == "tlog":
            if not Path(self._device).is_file():
                raise FileNotFoundError(f"MAVLink log {self._device!r} not found")
            try:
                conn = mavutil.mavmmaplog(self._device)
            except Exception as exc:  # its indexer is not robust to damaged logs: read it frame by frame instead
                self._record_error(f"indexing {self._device}", exc)
                conn = mavutil.mavlogfile(self._device, robust_parsing=True)
        elif self._kind == "serial":
            conn = mavutil.mavlink_connection(self._device, baud=self._baud, autoreconnect=True, robust_parsing=True)
        else:
            conn = mavutil.mavlink_connection(
                self._device,
                source_system=255,
                source_component=mavutil.mavlink.MAV_COMP_ID_ONBOARD_COMPUTER,
                robust_parsing=True,
                autoreconnect=True,
                retries=1,  # our loop retries every second and can still be stopped in between
            )
        conn.robust_parsing = True
        conn.mav.robust_parsing = True
        return conn

    # ------------------------------------------------------------- live links

    def add_component(self, component: Any) -> None:
        """Serve `component` (tick(send), on_message(msg, send), system_id, component_id) on this link's thread."""
        self._components.append(component)

    def _serve_components(self, conn: Any, msg: Any | None) -> None:
        for component in self._components:

            def send(message: Any, component: Any = component) -> None:
                mav = conn.mav
                source = (mav.srcSystem, mav.srcComponent)
                mav.srcSystem, mav.srcComponent = component.system_id, component.component_id
                try:
                    mav.send(message)
                finally:
                    mav.srcSystem, mav.srcComponent = source

            try:
                if msg is not None:
                    component.on_message(msg, send)
                component.tick(send)
            except OSError:
                raise  # the link's trouble: reopened by the caller
            except Exception as exc:  # a component's bug must not stop telemetry
                self._record_error(f"component on {self.url}", exc)

    def start(self) -> None:
        """Read on a background thread: a live link, or a file replayed at its own pace."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        target = self._replay_thread if self.is_file else self._live_thread
        self._thread = threading.Thread(target=target, name=f"mavlink:{self.url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reading thread (within ~0.5 s) and close the link."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> MavlinkReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _live_thread(self) -> None:
        """Never dies on link trouble: errors are counted and the link reopened after a pause."""
        conn = None
        next_heartbeat = 0.0
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._open()
                msg = conn.recv_match(blocking=True, timeout=0.1 if self._components else 0.5)
                if msg is not None:
                    self.process(msg)
                if self._components:
                    self._serve_components(conn, msg)
                if self._heartbeat and time.monotonic() >= next_heartbeat:
                    next_heartbeat = time.monotonic() + 1.0
                    conn.mav.heartbeat_send(
                        mavutil.mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavutil.mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0
                    )
            except Exception as exc:
                self._record_error(f"link {self.url}", exc)
                if conn is not None:
                    self._close(conn)
                    conn = None
                self._stop.wait(1.0)
        if conn is not None:
            self._close(conn)

    @staticmethod
    def _close(conn: Any) -> None:
        try:
            conn.close()
        except Exception:  # closing a broken link must not mask the original error
            log.debug("closing MAVLink connection failed", exc_info=True)

    # ----------------------------------------------------------------- replay

    def _replay_thread(self) -> None:
        try:
            self.replay(realtime=True)
        except Exception as exc:
            self._record_error(f"replay {self.url}", exc)

    def iter_replay(self, realtime: bool = False) -> Iterator[Any]:
        """Process every message of the file, yielding each after it updated the state, so a caller
        can step telemetry and video together. realtime=True paces by the log's timestamps."""
        if not self.is_file:
            raise ValueError(f"replay() needs a log file, not the live link {self.url!r}")
        if threading.current_thread() is not self._thread:
            self._stop.clear()  # a direct call after an earlier stop() must still read the file
        conn = self._open()
        wall0 = log0 = prev_t = 0.0
        log0_set = False
        try:
            failures = 0
            while not self._stop.is_set():
                try:
                    msg = conn.recv_match()
                except Exception as exc:  # robust parsing should prevent this; give up only if it persists
                    self._record_error(f"reading {self._device}", exc)
                    failures += 1
                    if failures >= 100:
                        break
                    continue
                failures = 0
                if msg is None:
                    break
                self.process(msg)
                if realtime and msg.get_type() != "BAD_DATA":
                    t = getattr(msg, "_timestamp", None)
                    if t is not None:
                        # Re-anchor on a clock jump back or a gap over _MAX_PACED_GAP_S (e.g. the boot-time
                        # clock of a raw log starting at 0): time-matching uses log time, not wall time.
                        if not log0_set or not -1.0 <= t - prev_t <= _MAX_PACED_GAP_S:
                            wall0, log0, log0_set = time.monotonic(), t, True
                        prev_t = t
                        delay = (t - log0) - (time.monotonic() - wall0)
                        if delay > 0.002 and self._stop.wait(delay):
                            break
                yield msg
        finally:
            self._close(conn)

    def replay(self, realtime: bool = False) -> int:
        """Process the whole file; returns the number of messages read (BAD_DATA included)."""
        return sum(1 for _ in self.iter_replay(realtime))

    # ------------------------------------------------------------- processing

    def process(self, msg: Any) -> None:
        """Count one pymavlink message and hand a decodable one to the fleet; usable with a connection
        owned elsewhere. A message that fails to decode is counted as an error, never raised."""
        mtype = msg.get_type()
        with self._lock:
            key = "UNKNOWN" if mtype.startswith("UNKNOWN_") else mtype
            if key in self._messages or len(self._messages) < _MAX_TYPES:
                self._messages[key] = self._messages.get(key, 0) + 1
            else:
                self._messages["OTHER"] = self._messages.get("OTHER", 0) + 1
            if mtype == "BAD_DATA":
                self._bad_data += 1
                return
        if mtype not in DECODERS or msg.get_srcSystem() == 0:  # only counted; system 0 is a broadcast, not a sender
            return
        t = getattr(msg, "_timestamp", None)
        if t is None or not math.isfinite(t):
            t = time.time()
        if self.is_file:
            self._log_now = t
        try:
            self._fleet.fold(msg, mtype, t)
        except Exception as exc:
            self._record_error(f"{mtype} from {msg.get_srcSystem()}/{msg.get_srcComponent()}", exc)

    # --------------------------------------------------------------- queries

    def now(self) -> float:
        """The reader's clock: wall time for live links, the latest log timestamp during/after a replay."""
        if self.is_file and self._log_now is not None:
            return self._log_now
        return time.time()

    def vehicles(self) -> list[int]:
        """System ids of the vehicles seen, in order of appearance (GCS and bare components excluded)."""
        return self._fleet.vehicles()

    def state(self, system_id: int | None = None) -> VehicleState | None:
        """Latest state of a vehicle (None: the first one seen), link_ok judged against now()."""
        return self._fleet.state(system_id, self.now())

    def state_at(self, system_id: int | None, t: float) -> VehicleState | None:
        """State at time t: position/altitude/attitude/gimbal interpolated between the samples around t,
        slower fields (mode, battery, …) as they were at t (±0.5 s). None when t lies more than
        stale_after_s outside the history; a stream with no sample near t gives None for its fields."""
        return self._fleet.state_at(system_id, t)

    def is_stale(self, system_id: int | None, now: float | None = None) -> bool:
        """True when the vehicle is unknown or sent nothing for more than stale_after_s (now: now())."""
        now = self.now() if now is None else now
        last = self._fleet.last_time(system_id)
        return last is None or now - last > self.stale_after_s

    # -------------------------------------------------------------- counters

    @property
    def messages(self) -> dict[str, int]:
        """Messages by type (BAD_DATA included, unknown ids as UNKNOWN); a copy."""
        with self._lock:
            return dict(self._messages)

    @property
    def bad_data(self) -> int:
        """BAD_DATA frames (bad CRC, garbage, truncation) plus frames pymavlink raised a parse error on."""
        return self._bad_data

    @property
    def errors(self) -> int:
        """Link/parse/handling errors survived so far; see last_error."""
        return self._errors

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def _record_error(self, where: str, exc: BaseException) -> None:
        line = f"{where}: {type(exc).__name__}: {exc}".replace("\n", " ")
        with self._lock:
            self._errors += 1
            if isinstance(exc, mavutil.mavlink.MAVError):  # a frame pymavlink could not parse
                self._bad_data += 1
            repeated = line == self._last_error
            self._last_error = line
        if not repeated:
            log.warning("MAVLink %s", line)
