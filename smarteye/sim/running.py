"""`with simulator:` for the simulators whose whole lifecycle is start() then stop()."""

from __future__ import annotations

from typing import Protocol, TypeVar


class _Startable(Protocol):
    def start(self) -> object: ...

    def stop(self) -> object: ...


_S = TypeVar("_S", bound=_Startable)


class StartStop:
    """Starts on entering the block and stops on leaving it, however it ends (a test that fails half-way
    must not leave an ffmpeg or a server running)."""

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self: _Startable, *exc: object) -> None:
        self.stop()
