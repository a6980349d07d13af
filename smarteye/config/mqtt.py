"""Configuration of the MQTT output: broker URL, credentials, TLS, topics and the on-disk spool."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smarteye.strict import StrictModel

Confirmations = Literal["auto", "on", "off"]

_SCHEMES = {"mqtt": 1883, "mqtts": 8883}


def _split_broker_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an mqtt:// or mqtts:// URL, or ValueError with an operator-readable reason."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts:// (got {shown})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("MQTT URL must be just mqtt[s]://host[:port] (no path, query or fragment)")
    host = parts.hostname
    if not host:
        raise ValueError("MQTT URL has no host (expected mqtt[s]://host[:port])")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("MQTT URL port must be a number between 1 and 65535") from None
    if port is None:
        port = _SCHEMES[scheme]
    if not 1 <= port <= 65535:
        raise ValueError("MQTT URL port must be a number between 1 and 65535")
    return scheme, host, port


def _format_host(host: str) -> str:
    """IPv6 literals need brackets inside a URL."""
    return f"[{host}]" if ":" in host else host


def validate_topic_name(topic: str, what: str = "topic") -> str:
    """Reject topics a broker would refuse to publish to (wildcards, NUL, empty, too long)."""
    if not topic:
        raise ValueError(f"{what} must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError(f"{what} {topic!r} must not contain MQTT wildcards '+' or '#'")
    if "\x00" in topic:
        raise ValueError(f"{what} must not contain NUL characters")
    if len(topic.encode("utf-8")) > 65535:
        raise ValueError(f"{what} is longer than 65535 bytes")
    return topic


class MqttTlsConfig(StrictModel):
    """TLS settings; leave the files unset to verify the broker against the system CAs."""

    ca_file: Path | None = Field(
        None,
        title="CA file",
        description="PEM bundle of CAs that signed the broker certificate (system CAs if unset).",
    )
    cert_file: Path | None = Field(
        None, title="Client certificate", description="PEM client certificate for mutual TLS."
    )
    key_file: Path | None = Field(
        None,
        title="Client key",
        description="PEM private key of the client certificate (required with cert_file).",
    )
    insecure: bool = Field(
        False,
        title="Insecure",
        description="Accept any broker certificate and host name. Only for testing with self-signed brokers.",
    )

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _check_pair(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class MqttConfig(BaseModel):
    """Where and how the edge node publishes events and status over MQTT."""

    # Inputs may carry credentials (user:pass@ in the URL); keep them out of validation messages.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(
        "mqtt://127.0.0.1:1883",
        title="Broker URL",
        description="mqtt://host[:port] or mqtts://host[:port] (TLS). "
        "Credentials written as user:pass@ are moved into username/password.",
    )
    username: str | None = Field(None, title="Username", description="Broker user name, if it requires login.")
    password: SecretStr | None = Field(None, title="Password", description="Broker password; never logged or shown.")
    client_id: str | None = Field(
        None,
        title="Client id",
        description="MQTT client id; unset means derived from the node name. Must be unique per broker.",
    )
    keepalive_s: int = Field(
        30,
        ge=5,
        le=3600,
        title="Keepalive",
        description="Seconds between pings; a dead link is noticed after ~1.5x.",
    )
    tls: MqttTlsConfig | None = Field(
        None,
        title="TLS",
        description="TLS settings; mqtts:// without this block uses TLS with the system CAs.",
    )
    topic_prefix: str = Field(
        "smarteye/v1",
        title="Topic prefix",
        description="Prepended to every topic, e.g. smarteye/v1. No wildcards, no leading or trailing '/'.",
    )
    spool_dir: Path = Field(
        Path("~/.cache/smarteye/spool"),
        validate_default=True,
        title="Spool directory",
        description="Where undelivered events are kept on disk so they survive broker outages and restarts.",
    )
    spool_max_messages: int = Field(
        100_000,
        ge=10,
        title="Spool size",
        description="Most events kept while the broker is unreachable; beyond this the oldest are dropped.",
    )
    max_inflight: int = Field(
        100,
        ge=1,
        le=10_000,
        title="Max in flight",
        description="Most events sent but not yet acknowledged by the broker (QoS 1 window).",
    )
    confirmations: Confirmations = Field(
        "auto",
        title="Storage confirmations",
        description="Edge only: keep each event in the spool until the ground station confirms it stored it (on "
        "<prefix>/<node>/stored), not just until the broker accepts it, so a broker crash loses nothing. `auto`: "
        "from the first confirmation a station ever sends this node (remembered in the spool), so a node that no "
        "station consumes is not made to re-send; `on`: from the start; `off`: the broker's acknowledgement "
        "settles an event. true/false are read as on/off.",
    )
    confirm_timeout_s: float = Field(
        300.0,
        ge=1,
        le=86_400,
        title="Confirmation timeout",
        description="Edge only: events the station has not confirmed this many seconds after the broker accepted "
        "them are sent again (they are also sent again after every reconnect).",
    )
    reconnect_min_s: float = Field(
        1.0, gt=0, le=60, title="First reconnect wait", description="Seconds before the first reconnect attempt "
        "after the broker is lost; doubles per failed attempt.",
    )  # fmt: skip
    reconnect_max_s: float = Field(
        30.0, gt=0, le=600, title="Longest reconnect wait", description="Cap of the doubling reconnect wait, so a "
        "broker that comes back is found within this many seconds.",
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _move_url_credentials(cls, data: Any) -> Any:
        """Accept mqtt://user:pass@host but store the secret only in `password`, never in `url`."""
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        parts = urlsplit(data["url"].strip())
        if "@" not in parts.netloc:
            return data
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, has_password, secret = userinfo.partition(":")
        data = dict(data)
        if user:
            if data.get("username") not in (None, user):
                raise ValueError("username is given both in the URL and in `username`; keep one")
            data["username"] = user
        if has_password:
            if data.get("password") is not None:
                raise ValueError("password is given both in the URL and in `password`; keep one")
            data["password"] = secret
        data["url"] = f"{parts.scheme}://{hostport}"
        return data

    @field_validator("confirmations", mode="before")
    @classmethod
    def _confirmations_from_bool(cls, value: Any) -> Any:
        """YAML's true/false (and the earlier boolean setting) mean on/off."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check_reconnect(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self

    @model_validator(mode="after")
    def _check_credentials(self) -> MqttConfig:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not (MQTT requires a username with a password)")
        return self

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme, host, port = _split_broker_url(value)
        return f"{scheme}://{_format_host(host)}:{port}"

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= len(value.encode("utf-8")) <= 65535:
            raise ValueError("client_id must be 1..65535 bytes (or unset to derive it from the node name)")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        validate_topic_name(value, "topic_prefix")
        if value.startswith("/") or value.endswith("/"):
            raise ValueError(f"topic_prefix {value!r} must not start or end with '/'")
        if "//" in value:
            raise ValueError(f"topic_prefix {value!r} must not contain empty levels ('//')")
        if value.startswith("$"):
            raise ValueError(f"topic_prefix {value!r} must not start with '$' (reserved for broker topics)")
        return value

    @field_validator("spool_dir")
    @classmethod
    def _expand_spool(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def scheme(self) -> str:
        """'mqtt' or 'mqtts'."""
        return _split_broker_url(self.url)[0]

    @property
    def host(self) -> str:
        """Broker host name or IP (without IPv6 brackets)."""
        return _split_broker_url(self.url)[1]

    @property
    def port(self) -> int:
        """Broker port; defaults to 1883 for mqtt:// and 8883 for mqtts://."""
        return _split_broker_url(self.url)[2]

    @property
    def use_tls(self) -> bool:
        """TLS is on for mqtts:// or whenever a tls block is given."""
        return self.scheme == "mqtts" or self.tls is not None

    @property
    def redacted_url(self) -> str:
        """The URL for logs and status: credentials are replaced by ***."""
        creds = "***@" if self.username or self.password else ""
        return f"{self.scheme}://{creds}{_format_host(self.host)}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for this broker: system CAs or `tls.ca_file`, optional client certificate."""
        tls = self.tls
        cafile = str(tls.ca_file) if tls is not None and tls.ca_file is not None else None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        if tls is not None and tls.cert_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
        if tls is not None and tls.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _not_the_stop_race(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Client is not connected.")


def paho_logger(name: str) -> logging.Logger:
    """The logger a paho client of ours logs to (`client.enable_logger`). paho 2.x's network thread runs its loop
    once more after our own disconnect() and logs "Client is not connected" at ERROR: every clean stop printed an
    error. Only a stop disconnects, so that line is dropped here, for edge and station alike."""
    logger = logging.getLogger(name)
    if _not_the_stop_race not in logger.filters:
        logger.addFilter(_not_the_stop_race)
    return logger
