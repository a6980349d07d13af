"""A listening socket for an optional server (WHEP, a web UI): when its port is taken (a second node on
the same host, a running demo) it takes the next free one and says so, naming the port and the config
key, because an optional feature must never stop the main job."""

from __future__ import annotations

import errno
import logging
import socket

log = logging.getLogger("smarteye.listen")

NEXT_PORTS = 20  # how far past a taken port to look before letting the kernel pick one


def listen_or_next(host: str, port: int, key: str) -> socket.socket:
    """A socket listening on host:port, else on the next free port after it (a warning names `key`).

    Only "address in use" moves on; any other error (a host that is not this machine's, no permission)
    is raised as OSError for the caller to report."""
    try:
        return socket.create_server((host, port))
    except OSError as error:
        if error.errno != errno.EADDRINUSE or port == 0:
            raise
    candidates = [*range(port + 1, min(port + 1 + NEXT_PORTS, 65536)), 0]
    for candidate in candidates:
        try:
            sock = socket.create_server((host, candidate))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        chosen = sock.getsockname()[1]
        log.warning("%s: port %d on %s is taken; serving on %d instead (set %s to choose another)",
                    key, port, host, chosen, key)  # fmt: skip
        return sock
    raise OSError(errno.EADDRINUSE, f"no free port near {port}")  # pragma: no cover - port 0 always binds
