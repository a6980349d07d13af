"""A real HTTP server on 127.0.0.1 that receives webhooks, checks their signature and keeps them; it
can be stopped and started again on the same port (a receiver that is down, then back)."""

from __future__ import annotations

import functools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ground_station.webhooks import SIGNATURE_HEADER, verify
from smarteye.sim.ports import free_tcp_port


@dataclass(frozen=True, slots=True)
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature is valid for this receiver's secret

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """Answers every POST with `status` (settable) and records it."""

    def __init__(self, secret: str, status: int = 200) -> None:
        self.secret = secret
        self.status = status
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/smarteye"
        self.hooks: list[Hook] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signed = verify(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body)
                with receiver._lock:
                    receiver.hooks.append(Hook(self.path, dict(self.headers.items()), body, signed))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        # A short poll: shutdown() waits for serve_forever to notice it (the default 0.5 s, on every stop).
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[Hook]:
        with self._lock:
            return list(self.hooks)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Hook]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(hooks := self.received()) >= count:
                return hooks
            time.sleep(0.01)
        raise AssertionError(f"the receiver got {len(self.received())} webhooks, not {count}, in {timeout:.0f} s")

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
