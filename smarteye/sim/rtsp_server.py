"""Simulated site cameras: sample video files served over real RTSP.

GStreamer's rtsp-server needs python3-gi, which only the system interpreter has (not
the project's Python), so the server itself lives in ``rtsp_server_main.py`` and runs
under ``/usr/bin/python3`` as a child process; this module only manages that process.
Used by the demo and by tests that want a camera they can stop and restart.

Example::

    with RtspServer({"/cam1": Path("media/vtest.avi")}) as srv:
        url = srv.url("/cam1")  # rtsp://127.0.0.1:<port>/cam1
"""

from __future__ import annotations

import collections
import pathlib
import subprocess
import threading
from collections.abc import Mapping

from smarteye.sim.ports import free_tcp_port
from smarteye.sim.running import StartStop

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = pathlib.Path(__file__).with_name("rtsp_server_main.py")

_STDERR_KEEP = 200  # lines of the server's stderr kept for error messages


class RtspServer(StartStop):
    """One RTSP server process serving ``mounts`` (``{"/cam1": path}``) on one port.

    The port stays fixed for the object's lifetime, so ``restart()`` brings a camera
    back at the same URL, as a rebooted real camera would.
    """

    def __init__(
        self,
        mounts: Mapping[str, pathlib.Path | str],
        port: int | None = None,
        loop: bool = True,
        *,
        host: str = "127.0.0.1",
        python: str = SYSTEM_PYTHON,
        keyframe_interval: int = 30,
    ) -> None:
        if not mounts:
            raise ValueError("RtspServer needs at least one mount")
        self.mounts: dict[str, pathlib.Path] = {
            self._mount_name(name): pathlib.Path(path) for name, path in mounts.items()
        }
        self._auto_port = port is None
        self.port: int = free_tcp_port() if port is None else port
        self.loop = loop
        self.host = host
        self.python = python
        self.keyframe_interval = keyframe_interval  # frames: real cameras send a keyframe every 1-10 s, some rarer
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_KEEP)
        self._readers: list[threading.Thread] = []
        self._started_once = False

    @staticmethod
    def _mount_name(name: str) -> str:
        return name if name.startswith("/") else f"/{name}"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def stderr(self) -> str:
        """The tail of the server's stderr (GStreamer warnings end up here)."""
        return "".join(self._stderr)

    def start(self, timeout: float = 15) -> None:
        """Start the server and wait until it listens; no-op if already running.

        Raises RuntimeError (with the server's stderr) if it exits or is not ready in
        ``timeout`` seconds. An automatically picked port that got taken in the meantime
        is replaced, unless the server already ran on it (restart() keeps its port).
        """
        if self.running:
            return
        attempts = 3 if self._auto_port and not self._started_once else 1
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
            except RuntimeError:
                if attempt + 1 < attempts and "cannot listen" in self.stderr:
                    self.port = free_tcp_port()
                    continue
                raise
            self._started_once = True
            return

    def _command(self) -> list[str]:
        cmd = [self.python, str(SCRIPT), "--port", str(self.port), "--address", self.host]
        cmd += ["--exit-with-stdin", "--keyframe-interval", str(self.keyframe_interval)]
        if self.loop:
            cmd.append("--loop")
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        return cmd

    def _start_once(self, timeout: float) -> None:
        self.stop()
        self._stderr.clear()
        try:
            proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,  # closed by stop() or by our death: the server then exits
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        except OSError as exc:
            raise RuntimeError(f"cannot run {self.python}: {exc}") from exc
        self._proc = proc
        ready = threading.Event()
        bound: list[int] = []

        def read_stdout() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("READY ") and not ready.is_set():
                    bound.append(int(line.split()[1]))
                    ready.set()
            ready.set()  # EOF: the process is gone; start() checks which case it was

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self._stderr.append(line)

        self._readers = [
            threading.Thread(target=read_stdout, name="rtsp-server-stdout", daemon=True),
            threading.Thread(target=read_stderr, name="rtsp-server-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

        if not ready.wait(timeout) or not bound:
            timed_out = not ready.is_set()
            self.stop()
            why = f"not ready after {timeout:.0f} s" if timed_out else f"exited ({proc.returncode})"
            raise RuntimeError(f"RTSP server {why}: {self.stderr.strip() or '(no stderr)'}")
        self.port = bound[0]

    def stop(self, grace: float = 5) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``grace`` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        for reader in self._readers:
            reader.join(timeout=2)  # pipes hit EOF once the process is gone
        self._readers = []
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def restart(self, timeout: float = 15) -> None:
        """Stop, then start again on the same port (a camera reboot)."""
        self.stop()
        self.start(timeout)

    # -- addressing --------------------------------------------------------------------

    def url(self, mount: str) -> str:
        """RTSP URL of ``mount``, e.g. ``rtsp://127.0.0.1:8554/cam1``."""
        name = self._mount_name(mount)
        if name not in self.mounts:
            raise KeyError(f"unknown mount {name!r}; have {sorted(self.mounts)}")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"rtsp://{host}:{self.port}{name}"

    # -- context manager ---------------------------------------------------------------

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RtspServer(port={self.port}, mounts={sorted(self.mounts)}, {state})"
