"""The downloader against a real local HTTP server: good checksum, bad checksum, a connection cut
mid-body and resumed with a Range request, and a server that is not there."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.assets_fetch import FetchError, fetch, sha256_of
from smarteye.sim.ports import free_tcp_port

PAYLOAD = os.urandom(300_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Server(http.server.ThreadingHTTPServer):
    cut_first_at: int | None = None  # the first full GET stops after this many bytes
    ranges: list[str | None]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        self.server.ranges.append(wanted)
        start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
        body = PAYLOAD[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.server.cut_first_at
        if cut is not None and not wanted:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.server.cut_first_at = None
            self.close_connection = True
            self.connection.shutdown(2)  # the peer sees the body end early
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.ranges = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/vtest.avi"


def test_good_checksum_gives_the_file_and_reports_progress(server: _Server, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    dest = fetch(_url(server), tmp_path / "media" / "vtest.avi", DIGEST, progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "media" / "vtest.avi.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 2
    # Present and verified: a second call does not download again.
    fetch(_url(server), dest, DIGEST)
    assert server.ranges == [None]


def test_bad_checksum_is_an_error_and_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "vtest.avi"
    with pytest.raises(FetchError, match=r"vtest.avi: checksum mismatch .*expected 000000000000"):
        fetch(_url(server), dest, "0" * 64)
    assert not dest.exists() and not (tmp_path / "vtest.avi.part").exists()


def test_interrupted_download_resumes_with_a_range_request(server: _Server, tmp_path: Path) -> None:
    server.cut_first_at = 100_000
    dest = fetch(_url(server), tmp_path / "vtest.avi", DIGEST)
    assert sha256_of(dest) == DIGEST
    assert server.ranges[0] is None
    resumed_from = int(server.ranges[1].removeprefix("bytes=").rstrip("-"))  # type: ignore[union-attr]
    assert 0 < resumed_from <= 100_000


def test_partial_file_from_an_earlier_run_is_resumed(server: _Server, tmp_path: Path) -> None:
    (tmp_path / "vtest.avi.part").write_bytes(PAYLOAD[:123_456])
    dest = fetch(_url(server), tmp_path / "vtest.avi", DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=123456-"]


def test_server_down_is_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}/vtest.avi"
    with pytest.raises(FetchError) as caught:
        fetch(url, tmp_path / "vtest.avi", DIGEST, timeout_s=5)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("vtest.avi: cannot download http://127.0.0.1:") and "offline" in message


def test_offline_mode_never_connects(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTEYE_OFFLINE", "1")
    with pytest.raises(FetchError, match="SMARTEYE_OFFLINE is set"):
        fetch(_url(server), tmp_path / "vtest.avi", DIGEST)
    assert server.ranges == []


def test_http_error_status_is_named(tmp_path: Path) -> None:
    class Missing(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_error(404)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Missing)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchError, match="answered HTTP 404"):
            fetch(f"http://127.0.0.1:{srv.server_address[1]}/x", tmp_path / "x", DIGEST)
    finally:
        srv.shutdown()
        srv.server_close()
