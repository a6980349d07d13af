"""`smarteye doctor`: is this machine ready for the main job (`smarteye demo`, an edge node)? One row per
part — broker, ffmpeg, GStreamer RTSP server, Mosquitto, Chromium, model and runtime, sample media, ports,
clock sync — each with what was found and, when something is wrong, the one thing to do about it.
Exit status 1 when a required part is missing, so scripts and CI can gate on it."""

from __future__ import annotations

import enum
import importlib.metadata
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from edge.assets import asset_states, cache_dir, find_asset, how_to_add
from smarteye.config.mqtt import MqttConfig
from smarteye.sim.broker import broker_reachable, find_mosquitto
from smarteye.sim.rtsp_server import SYSTEM_PYTHON

SETUP = "run scripts/setup.sh"
# Ports the defaults use: a taken one is only a warning (the component takes the next free port and says so).
DEFAULT_PORTS = (
    ("web.port", 8080, "ground station web UI", "the demo takes the next free port and says so; set web.port"),
    ("video.whep.port", 8889, "edge WHEP", "the node takes the next free port and says so; set video.whep.port"),
    ("metrics.port", 9464, "edge /metrics", "the node runs without /metrics and says so; set metrics.port"),
)


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"  # optional, or the main job copes (another port, a part left out)
    FAIL = "FAIL"  # the main job cannot run


@dataclass(frozen=True, slots=True)
class Check:
    part: str
    level: Level
    found: str
    fix: str = ""


def check_broker(url: str) -> Check:
    try:
        config = MqttConfig(url=url)
    except ValueError as error:
        return Check("MQTT broker", Level.FAIL, f"bad URL {url!r}: {error}", "pass --mqtt mqtt://HOST:PORT")
    where = f"{config.host}:{config.port}"
    if broker_reachable(config.host, config.port, timeout=2.0):
        return Check("MQTT broker", Level.OK, f"{config.scheme}://{where} answers")
    return Check("MQTT broker", Level.FAIL, f"nothing answers on {where}",
                 "start it (`systemctl start mosquitto`; `apt-get install mosquitto`) or pass --mqtt URL")  # fmt: skip


def _version_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def check_ffmpeg() -> Check:
    path = shutil.which("ffmpeg")
    version = _version_line([path, "-hide_banner", "-version"]) if path else None
    if version is None:
        return Check("ffmpeg", Level.FAIL, "not on PATH" if path is None else f"{path} does not run",
                     f"`apt-get install ffmpeg` ({SETUP}); the drone simulator streams with it")  # fmt: skip
    return Check("ffmpeg", Level.OK, f"{path}: {version.removeprefix('ffmpeg version ').split(' ')[0]}")


def check_rtsp_server() -> Check:
    probe = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')"
    try:
        ok = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return Check("GStreamer RTSP server", Level.FAIL, f"{SYSTEM_PYTHON} cannot load GstRtspServer",
                     f"`apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good` ({SETUP}); "
                     "the demo's site camera is served by it")  # fmt: skip
    return Check("GStreamer RTSP server", Level.OK, f"GstRtspServer 1.0 via {SYSTEM_PYTHON}")


def check_mosquitto() -> Check:
    path = find_mosquitto()
    if path is None:
        return Check("Mosquitto", Level.FAIL, "no mosquitto binary",
                     f"`apt-get install mosquitto` ({SETUP}); the demo runs a private broker with it")  # fmt: skip
    return Check("Mosquitto", Level.OK, path)


def check_chromium() -> Check:
    path = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))), None)
    if path is None:
        return Check("Chromium (tests)", Level.WARN, "not found; browser tests will skip",
                     f"`apt-get install chromium chromium-driver` ({SETUP})")  # fmt: skip
    return Check("Chromium (tests)", Level.OK, path)


def check_model(name: str = "yolov8n.pt") -> list[Check]:
    checks: list[Check] = []
    path = find_asset(name, "models")
    if path is None:
        checks.append(Check("model", Level.FAIL, f"{name} not found", how_to_add(name, "models")))
    else:
        checks.append(Check("model", Level.OK, str(path)))
    try:
        versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("ultralytics", "torch"))
    except importlib.metadata.PackageNotFoundError as error:
        checks.append(Check("runtime", Level.FAIL, f"{error.name} is not installed", SETUP))
        return checks
    try:  # which runtime detector.backend: auto picks (OpenVINO when installed, else ONNX Runtime, else torch)
        from edge.detect.runtime import choose_backend

        backend = choose_backend("auto", "cpu")
    except Exception as error:  # an older edge without backends, or a broken install: report, never crash
        return [*checks, Check("runtime", Level.OK, f"{versions}; backend: torch ({type(error).__name__})")]
    note = "" if backend == "torch" else f"; the first run exports the .pt to {backend} (cached in {cache_dir()})"
    level = Level.OK if backend != "torch" else Level.WARN
    fix = "" if backend != "torch" else "install openvino for ~3x faster CPU inference"
    return [*checks, Check("runtime", level, f"{versions}; backend (detector.backend: auto): {backend}{note}", fix)]


def check_media() -> list[Check]:
    checks = []
    for state in asset_states():
        if state.entry.kind != "media":
            continue
        required = state.entry.name == "vtest.avi"
        if state.path is not None:
            checks.append(Check(f"media {state.entry.name}", Level.OK, str(state.path)))
        else:
            checks.append(Check(f"media {state.entry.name}", Level.FAIL if required else Level.WARN,
                                f"missing: {state.entry.used_for}" + ("" if required else " is left out"),
                                how_to_add(state.entry.name, "media")))  # fmt: skip
    return checks


def check_ports(ports: tuple[tuple[str, int, str, str], ...] = DEFAULT_PORTS) -> list[Check]:
    checks = []
    for key, port, what, when_taken in ports:
        with socket.socket() as probe:
            taken = probe.connect_ex(("127.0.0.1", port)) == 0
        if taken:
            checks.append(Check(f"port {port}", Level.WARN, f"taken ({what})", when_taken))
        else:
            checks.append(Check(f"port {port}", Level.OK, f"free ({what}, {key})"))
    return checks


def check_clock() -> Check:
    """Events carry capture times, compared across machines: clocks should be synchronised."""
    if shutil.which("chronyc"):
        line = _version_line(["chronyc", "-n", "tracking"])
        if line is not None:
            return Check("clock sync", Level.OK, f"chrony: {line}")
    if shutil.which("timedatectl"):
        synced = _version_line(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
        if synced == "yes":
            return Check("clock sync", Level.OK, "systemd-timesyncd: synchronised")
        if synced == "no":
            return Check("clock sync", Level.WARN, "timedatectl: not synchronised",
                         "`timedatectl set-ntp true` or install chrony; latencies across machines need it")  # fmt: skip
    return Check("clock sync", Level.WARN, "no chrony or timedatectl status here",
                 "sync clocks with chrony or systemd-timesyncd on every node and the station")  # fmt: skip


def run_checks(mqtt_url: str) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        lambda: check_broker(mqtt_url), check_ffmpeg, check_rtsp_server, check_mosquitto, check_chromium,
        check_model, check_media, check_ports, check_clock,
    ]  # fmt: skip
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks += result if isinstance(result, list) else [result]
    return checks


def render(checks: list[Check]) -> object:
    from rich.table import Table

    table = Table(title="smarteye doctor", expand=False)
    for column in ("part", "status", "found", "fix"):
        table.add_column(column, overflow="fold")
    styles = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}
    for check in checks:
        table.add_row(check.part, f"[{styles[check.level]}]{check.level.value}[/]", check.found, check.fix)
    return table


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.level is Level.FAIL for c in checks) else 0
