"""A private, throw-away Mosquitto broker for tests and demos.

Runs `mosquitto -c CONF` on a free 127.0.0.1 port with a generated config in a temp dir, so tests
never depend on (or disturb) a system broker, and can stop/restart it to simulate outages.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from smarteye.sim.ports import free_tcp_port
from smarteye.sim.tls import make_server_pki

_MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def broker_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port (cheap liveness probe, no MQTT handshake)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (it usually lives in sbin, which is often not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in _MOSQUITTO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


STATION_USER = "station"


def acl_rules(prefix: str, station_users: Sequence[str] = (STATION_USER,)) -> str:
    """The broker ACL (mosquitto `acl_file`) for topic prefix `prefix`; configs/mosquitto/acl is this for
    `smarteye/v1`.  Every edge node logs in with its node name as user name, so the pattern's `%u` pins
    what it may publish to its own topics, whatever its payload says (the station checks that too)."""
    lines = [
        f"# SmartEye broker ACL (mosquitto acl_file) for the topic prefix {prefix}.",
        "# Made by smarteye.sim.broker.acl_rules (a test keeps configs/mosquitto/acl equal to it).",
        "",
        "# The ground station: reads every node's messages, publishes the rules each stream runs and",
        "# the confirmations of what it has stored.",
    ]
    for user in station_users:
        lines += [f"user {user}", f"topic read {prefix}/#", f"topic write {prefix}/+/rules/+",
                  f"topic write {prefix}/+/stored", ""]  # fmt: skip
    lines += [
        "# Every other user is an edge node whose user name is its node name (%u): it may publish only",
        "# under its own topics (events, status, availability and its last will, telemetry, snapshots,",
        "# alerts, alert snapshots, clips, counts) and read only its own rules and confirmations.",
        f"pattern write {prefix}/%u/#",
        f"pattern read {prefix}/%u/rules/+",
        f"pattern read {prefix}/%u/stored",
    ]
    return "\n".join(lines) + "\n"


class MosquittoBroker:
    """A private mosquitto subprocess; `restart()` keeps the port so clients can reconnect to the same URL.

    With `users={"name": "password"}` the broker requires login (via a mosquitto_passwd file)
    instead of allowing anonymous clients.  `persistence=True` keeps sessions, queued messages and
    retained messages across `restart()` (in the private temp dir), so a test subscriber with
    clean_session=False misses nothing while the broker is down; the default is off.
    `certfile`/`keyfile` (PEM) make the listener TLS-only (mqtts://).  `acl_prefix` adds the ACL of
    `acl_rules` (configs/mosquitto/acl): each node publishes only under its own topics, the station reads
    all.  `MosquittoBroker.secured(...)` makes the whole production set-up at once: TLS with a fresh CA,
    one user per node and for the station, the ACL; `client_settings(user)` is what a client needs.
    """

    def __init__(
        self,
        port: int | None = None,
        users: dict[str, str] | None = None,
        executable: str | None = None,
        persistence: bool = False,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        acl_prefix: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        exe = executable or find_mosquitto()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.executable = exe
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_tcp_port()
        self.users = dict(users or {})
        self.persistence = persistence
        if (certfile is None) != (keyfile is None):
            raise ValueError("certfile and keyfile must be given together")
        self.certfile = certfile
        self.keyfile = keyfile
        self.acl_prefix = acl_prefix
        self.ca_file = ca_file  # what clients verify the broker with (not read by the broker)
        self._pki_dir: tempfile.TemporaryDirectory[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """mqtt://127.0.0.1:PORT, or mqtts:// when the broker was given a certificate."""
        scheme = "mqtts" if self.certfile else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        """The broker's log file, handy when a test fails."""
        return Path(self._tmp.name) / "mosquitto.log" if self._tmp else None

    def _write_config(self, workdir: Path) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true" if self.persistence else "persistence false",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Stay the current user: as root mosquitto would otherwise switch to `mosquitto`
            # and lose access to this private temp dir.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        ]
        if self.certfile and self.keyfile:
            lines += [f"certfile {Path(self.certfile).resolve()}", f"keyfile {Path(self.keyfile).resolve()}"]
        if self.persistence:
            lines += [f"persistence_location {workdir}/", "autosave_interval 0"]
        if self.users:
            passwd = workdir / "passwd"
            passwd.touch(mode=0o600)
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for name, secret in self.users.items():
                subprocess.run(
                    [tool, "-b", str(passwd), name, secret],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
            if self.acl_prefix is not None:
                acl = workdir / "acl"
                acl.write_text(acl_rules(self.acl_prefix), encoding="utf-8")
                lines.append(f"acl_file {acl}")
        else:
            lines.append("allow_anonymous true")
        conf = workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return conf

    @classmethod
    def secured(
        cls, nodes: Sequence[str], prefix: str = "smarteye/v1", station: str = STATION_USER, **kwargs: Any
    ) -> MosquittoBroker:
        """A broker as a site should run it: TLS (a CA made now, for 127.0.0.1), a user with a random
        password per node (user name = node name) and for the station, and the ACL for `prefix`."""
        pki_dir = tempfile.TemporaryDirectory(prefix="smarteye-mqtt-pki-")
        pki = make_server_pki(Path(pki_dir.name))
        users = {name: secrets.token_urlsafe(16) for name in (*nodes, station)}
        broker = cls(users=users, certfile=pki.cert_file, keyfile=pki.key_file, acl_prefix=prefix,
                     ca_file=pki.ca_file, **kwargs)  # fmt: skip
        broker._pki_dir = pki_dir
        return broker

    def client_settings(self, user: str) -> dict[str, Any]:
        """The `mqtt:` settings (url, credentials, TLS) with which `user` connects to this broker."""
        settings: dict[str, Any] = {"url": self.url, "username": user, "password": self.users[user]}
        if self.ca_file is not None:
            settings["tls"] = {"ca_file": str(self.ca_file)}
        return settings

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        """Launch the broker and wait until it accepts TCP connections."""
        if self.running:
            return self
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="smarteye-mosquitto-")
        conf = self._write_config(Path(self._tmp.name))
        self._proc = subprocess.Popen(
            [self.executable, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                log_file = self.log_path
                log = log_file.read_text(errors="replace") if log_file and log_file.exists() else ""
                self._proc = None
                detail = f"{err.strip()} {log.strip()}".strip()
                raise RuntimeError(f"mosquitto exited on start (port {self.port}): {detail}")
            if broker_reachable(self.host, self.port, timeout=0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"mosquitto did not accept connections on {self.url} within {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL); clients see their connection drop."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stderr:
            proc.stderr.close()
        # Wait until the port is really free so that restart() can bind it again.
        deadline = time.monotonic() + timeout
        while broker_reachable(self.host, self.port, timeout=0.1) and time.monotonic() < deadline:
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no goodbye to clients, no last save of its state."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self.stop()

    def restart(self, timeout: float = 10.0) -> MosquittoBroker:
        """Stop and start on the same port; sessions and retained messages survive only with persistence."""
        self.stop()
        return self.start(timeout=timeout)

    def close(self) -> None:
        """Stop the broker and delete its temp dir."""
        self.stop()
        for tmp in (self._tmp, self._pki_dir):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.cleanup()
        self._tmp = self._pki_dir = None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MosquittoBroker({self.url}, running={self.running})"
