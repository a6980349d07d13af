"""Run the real `smarteye edge` command as a subprocess for end-to-end tests."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def smarteye_command() -> list[str]:
    """The installed console script when present (as a user runs it), else `python -m smarteye`."""
    script = Path(sys.executable).with_name("smarteye")
    if script.exists():
        return [str(script)]
    found = shutil.which("smarteye")
    return [found] if found else [sys.executable, "-m", "smarteye"]


# Test nodes serve WHEP on a free port: a fixed one would collide with a running demo or another node.
ANY_PORT_VIDEO = {"whep": {"port": 0}}


def write_config(path: Path, **config: Any) -> Path:
    config.setdefault("metrics", {"port": 0})
    video = config.setdefault("video", {})
    video.setdefault("whep", ANY_PORT_VIDEO["whep"])
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class EdgeProcess:
    """`smarteye edge --config FILE`, stopped with SIGTERM like a service manager would."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EdgeProcess:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*smarteye_command(), "edge", "--config", str(self.config), "--log-level", "info"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
