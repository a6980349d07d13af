"""HTTPS for the station and the security headers of every response (issue 12): a self-signed certificate
made on first run and kept, HSTS only over TLS, the session cookie Secure exactly when the login came over
HTTPS, CSP / X-Frame-Options / nosniff / Referrer-Policy on pages and API responses alike."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from ground_station.auth.roles import Role
from ground_station.config import GroundStationConfig, WebConfig
from ground_station.service import GroundStation
from ground_station.web.headers import API_CONTENT_SECURITY_POLICY
from ground_station.web.tls import TlsConfigError, fingerprint, self_signed, tls_files
from smarteye.sim.broker import MosquittoBroker
from smarteye.sim.ports import free_tcp_port
from tests.support.accounts import FAST_HASHER
from tests.support.ingest import make_config

PASSWORD = "https-password-1"
LOGIN = {"username": "ada", "password": PASSWORD}

pytestmark = pytest.mark.timeout(60)


def _assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY", response.url
    assert headers["referrer-policy"] == "same-origin", response.url
    assert "frame-ancestors 'none'" in headers["content-security-policy"], response.url


def test_plain_http_station_sends_security_headers_no_hsts_and_a_non_secure_cookie(tmp_path: Path) -> None:
    config = GroundStationConfig.model_validate({"database_url": f"sqlite:///{tmp_path / 'gs.sqlite'}"})
    station = GroundStation(config, hasher=FAST_HASHER)  # as the product builds it (default secure_cookies)
    try:
        station.accounts.create_user("ada", PASSWORD, Role.ADMIN)
        client = TestClient(station.app)
        login = client.post("/api/login", json=LOGIN)
        assert login.status_code == 200
        assert "secure" not in login.headers["set-cookie"].lower()  # a LAN install over http can log in
        responses = [login, client.get("/api/health"), client.get("/api/events"), client.get("/timeline"),
                     client.get("/static/app.js"), client.get("/api/nope"), client.get("/metrics")]  # fmt: skip
        for response in responses:
            _assert_security_headers(response)
            assert "strict-transport-security" not in response.headers
        assert client.get("/api/events").headers["content-security-policy"] == API_CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in client.get("/timeline").headers["content-security-policy"]  # the page's own
    finally:
        station.store.close()


def test_self_signed_https_station_hsts_and_secure_cookie(tmp_path: Path, broker: MosquittoBroker) -> None:
    tls_dir = tmp_path / "tls"
    config = make_config(
        broker, f"sqlite:///{tmp_path / 'gs.sqlite'}", f"test-{uuid.uuid4().hex[:8]}/v1",
        web={"port": free_tcp_port(), "tls_self_signed": True, "tls_dir": str(tls_dir)},
    )  # fmt: skip
    station = GroundStation(config, hasher=FAST_HASHER)
    station.accounts.create_user("ada", PASSWORD, Role.ADMIN)
    cert = tls_dir / "station-cert.pem"
    assert cert.exists() and (tls_dir / "station-key.pem").stat().st_mode & 0o077 == 0  # key: owner only
    first = fingerprint(cert)
    station.start()
    try:
        assert station.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))  # trusted once, as an operator would
        with httpx.Client(base_url=station.url, verify=context, timeout=10) as client:
            login = client.post("/api/login", json=LOGIN)
            assert login.status_code == 200
            cookie = login.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            for response in (login, client.get("/api/events"), client.get("/timeline")):
                _assert_security_headers(response)
                assert response.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(httpx.ConnectError):  # not trusted: a browser would warn too
            httpx.get(f"{station.url}/api/health", timeout=5)
    finally:
        station.stop()
    assert fingerprint(self_signed(tls_dir).cert) == first  # kept: the same certificate on the next run


def test_tls_settings_are_checked_and_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="tls_cert and tls_key go together"):
        WebConfig(tls_cert=tmp_path / "c.pem")
    with pytest.raises(ValidationError, match="tls_self_signed"):
        WebConfig(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem", tls_self_signed=True)
    with pytest.raises(TlsConfigError, match=r"web\.tls_cert: no such file"):
        tls_files(WebConfig(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"))
    (tmp_path / "c.pem").write_text("not a certificate")
    (tmp_path / "k.pem").write_text("not a key")
    with pytest.raises(TlsConfigError, match=r"web\.tls_cert: .* is not a PEM certificate"):
        tls_files(WebConfig(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"))
    assert tls_files(WebConfig()) is None
