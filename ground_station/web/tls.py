"""HTTPS for the station: the certificate files from the config, or a self-signed pair made on first run.

Why self-signed at all: a site station on a LAN has no public name for a CA to certify, yet the session
cookie and the edge nodes' uplink tokens must not cross the network in clear. A self-signed certificate
(kept, so its fingerprint can be pinned or trusted once) gives encryption at once; a real certificate is
two config lines (`web.tls_cert`, `web.tls_key`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ground_station.config import WebConfig

CERT_FILE = "station-cert.pem"
KEY_FILE = "station-key.pem"
VALID_DAYS = 825  # the longest a browser accepts for a TLS server certificate


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path


def _names(host: str) -> list[x509.GeneralName]:
    """localhost, the machine's name and the listening address (unless a wildcard) as subject names."""
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    hostname = socket.gethostname()
    if hostname and hostname != "localhost":
        names.append(x509.DNSName(hostname))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    else:
        if not address.is_unspecified and str(address) != "127.0.0.1":
            names.append(x509.IPAddress(address))
    return names


def self_signed(folder: Path, host: str = "127.0.0.1") -> TlsFiles:
    """The self-signed pair in `folder`, made now (ECDSA P-256, key readable by the owner only) if absent."""
    folder = folder.expanduser()
    files = TlsFiles(folder / CERT_FILE, folder / KEY_FILE)
    if files.cert.exists() and files.key.exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SmartEye ground station (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem_key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def fingerprint(cert_file: Path) -> str:
    """SHA-256 fingerprint (AA:BB:…), to compare with what a browser shows before trusting it."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


class TlsConfigError(ValueError):
    """A configured certificate or key file that cannot be used (the message names the setting)."""


def tls_files(web: WebConfig) -> TlsFiles | None:
    """The files to serve HTTPS with for this config (made now if self-signed and absent), or None for HTTP."""
    if web.tls_self_signed:
        return self_signed(web.tls_dir, web.host)
    if web.tls_cert is None or web.tls_key is None:
        return None
    files = TlsFiles(web.tls_cert.expanduser(), web.tls_key.expanduser())
    for setting, path in (("web.tls_cert", files.cert), ("web.tls_key", files.key)):
        if not path.is_file():
            raise TlsConfigError(f"{setting}: no such file {path}")
    try:
        x509.load_pem_x509_certificate(files.cert.read_bytes())
    except ValueError as error:
        raise TlsConfigError(f"web.tls_cert: {files.cert} is not a PEM certificate ({error})") from None
    return files
