"""Configuration of the ground station's aggregator and store (one pydantic model, like the edge's)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ground_station.command.config import CommandConfig
from ground_station.feeds.cot import CotConfig
from smarteye.config.ice import IceServer
from smarteye.config.mqtt import MqttConfig
from smarteye.config.origins import check_origin
from smarteye.strict import StrictModel
from smarteye.wire.messages import AlertState
from smarteye.wire.names import repeated
from smarteye.wire.rules import Severity

_BACKENDS = ("sqlite", "postgresql")


def normalise_database_url(url: str) -> str:
    """Validate a SQLAlchemy URL for a supported backend; expand `~` in SQLite file paths.

    Expansion happens here (not at connect time) so logs, status and the store all show the same path.
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise ValueError("database_url must look like sqlite:///path or postgresql+psycopg://host/db") from None
    if parsed.get_backend_name() not in _BACKENDS:
        raise ValueError(f"database_url must be SQLite or PostgreSQL (got {parsed.get_backend_name()!r})")
    if parsed.get_backend_name() == "postgresql":
        if "+" not in parsed.drivername:  # plain postgresql:// would pick psycopg2, which we do not use
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.get_driver_name() != "psycopg":
            raise ValueError("PostgreSQL URLs must use psycopg 3: postgresql+psycopg://user@host/db")
    elif parsed.get_driver_name() != "pysqlite":
        raise ValueError("SQLite URLs must use the built-in driver: sqlite:///path")
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and database.startswith("~"):
        parsed = parsed.set(database=str(Path(database).expanduser()))
    return parsed.render_as_string(hide_password=False)


class WebConfig(StrictModel):
    """The web UI and API server."""

    host: str = Field("127.0.0.1", title="Host", description="Address to listen on (0.0.0.0 for every interface).")
    port: int = Field(8080, ge=1, le=65535, title="Port", description="HTTP(S) port.")
    secure_cookies: bool | None = Field(
        None,
        title="Secure cookies",
        description="The session cookie's Secure flag. Unset: follow the scheme (Secure when the login came over "
        "HTTPS, so a plain-http LAN install works and a TLS one is protected); true or false force it.",
    )
    tls_cert: Path | None = Field(
        None, title="TLS certificate", description="PEM certificate (chain) file: serve HTTPS. Needs tls_key."
    )
    tls_key: Path | None = Field(None, title="TLS key", description="PEM private key file of tls_cert.")
    tls_self_signed: bool = Field(
        False,
        title="Self-signed TLS",
        description="Serve HTTPS with a self-signed certificate made on first run in tls_dir (kept for the next "
        "runs). Not with tls_cert/tls_key.",
    )
    tls_dir: Path = Field(
        Path("~/.local/share/smarteye/tls"),
        title="TLS folder",
        description="Where the self-signed certificate and its key (mode 600) are kept.",
    )
    session_ttl_s: float = Field(12 * 3600, ge=60, le=30 * 86400, title="Session lifetime", description="Seconds.")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        title="Trusted proxies",
        description="Reverse proxies (CIDRs, e.g. 10.0.0.5/32) whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed: a request from one of them is taken as from the right-most address in X-Forwarded-For that "
        "is not a trusted proxy (login throttling and the audit see the client, not the proxy). Empty: no "
        "forwarding header is believed, from anyone.",
    )
    tiles_url: str | None = Field(
        None,
        title="Map tiles URL",
        description="Slippy-map tile URL template for the pilot map, e.g. https://tile.example.org/{z}/{x}/{y}.png "
        "({s}: subdomains). Unset: the map stays offline on its metric grid; no request leaves the station.",
    )
    tiles_attribution: str | None = Field(
        None, max_length=300, title="Map tiles attribution", description="Shown on the map over the tiles."
    )

    @field_validator("tiles_url")
    @classmethod
    def _tiles_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, rest = value.partition("://")
        host = rest.split("/", 1)[0]
        if scheme not in ("http", "https") or not host or any(c in host for c in " '\";,"):
            raise ValueError("tiles_url must be an http(s) URL: https://host/{z}/{x}/{y}.png")
        if not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError("tiles_url must contain {z}, {x} and {y}")
        return value

    @model_validator(mode="after")
    def _tls_choice(self) -> WebConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both files or neither")
        if self.tls_self_signed and self.tls_cert is not None:
            raise ValueError("tls_self_signed makes its own certificate: drop it, or drop tls_cert and tls_key")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_self_signed or self.tls_cert is not None


class LiveVideoConfig(StrictModel):
    """The relay of the edge nodes' live video to browsers (WHEP)."""

    max_viewers: int = Field(64, ge=1, le=4096, title="Maximum viewers", description="WebRTC sessions at once.")
    max_streams: int = Field(256, ge=1, le=65536, title="Maximum streams", description="Streams relayed at once.")
    max_viewers_per_principal: int = Field(
        16, ge=1, le=4096, title="Maximum viewers per user",
        description="WebRTC sessions one user or token may hold at once (one viewer cannot take every slot).",
    )  # fmt: skip
    max_streams_per_node: int = Field(
        16, ge=1, le=65536, title="Maximum streams per node",
        description="Streams one edge node may relay at once (one node's token cannot block the others' video).",
    )  # fmt: skip
    cors_origins: list[str] = Field(
        default_factory=list, title="WHEP CORS origins",
        description="Web players on these origins (scheme://host[:port]) may use the station's WHEP endpoint "
        "from a browser with a bearer token; none by default.",
    )  # fmt: skip
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        title="ICE servers",
        description="STUN/TURN servers for browsers behind NAT: used by the station and handed to the live page.",
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [check_origin(origin) for origin in origins]


class AlertsConfig(StrictModel):
    """What the station keeps of the edge nodes' alerts."""

    max_clip_bytes: int = Field(
        32_000_000,
        ge=100_000,
        le=256_000_000,
        title="Largest clip",
        description="Alert clips (MP4) larger than this are refused and counted as malformed (`schema`).",
    )


class WebhookEndpoint(BaseModel):
    """One receiver of alerts: every alert message it wants is POSTed to it as JSON, signed with its secret."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(title="URL", description="http(s) URL the alert JSON is POSTed to.")
    secret: SecretStr = Field(
        title="Secret",
        description="Shared secret of the X-SmartEye-Signature HMAC (at least 16 characters); never logged or shown.",
    )
    min_severity: Severity = Field(
        Severity.INFO, title="Minimum severity", description="Alerts of a lower severity are not sent."
    )
    states: list[AlertState] = Field(
        default_factory=lambda: list(AlertState),
        min_length=1,
        title="States",
        description="Which alert messages are sent: start, update, end (default: all).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        scheme, _, rest = value.partition("://")
        if scheme not in ("http", "https") or not rest.split("/", 1)[0] or any(c.isspace() for c in value):
            raise ValueError("url must be an http(s) URL, e.g. https://host/path")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return value


class WebhooksConfig(StrictModel):
    """Alerts POSTed to other systems: retried with exponential backoff, kept in the database until
    delivered (a restart loses nothing), never in the ingest path's way."""

    endpoints: list[WebhookEndpoint] = Field(
        default_factory=list, max_length=32, title="Endpoints", description="Receivers of the alerts (none: off)."
    )
    timeout_s: float = Field(10.0, gt=0, le=120, title="Timeout", description="Seconds one POST may take.")
    max_attempts: int = Field(
        12, ge=1, le=1000, title="Attempts", description="POSTs of one alert before its delivery is marked failed."
    )
    backoff_initial_s: float = Field(
        1.0, gt=0, le=3600, title="First retry", description="Wait (s) before the first retry; doubles each time."
    )
    backoff_max_s: float = Field(
        600.0, gt=0, le=86400, title="Longest wait", description="Cap (s) on the wait between two attempts."
    )
    max_pending: int = Field(
        10_000,
        ge=1,
        title="Pending deliveries",
        description="Most deliveries waiting per endpoint; beyond this the oldest are marked failed (a receiver "
        "that is gone for long must not grow the database without bound).",
    )

    @model_validator(mode="after")
    def _unique_urls(self) -> WebhooksConfig:
        if twice := repeated(endpoint.url for endpoint in self.endpoints):
            raise ValueError(f"endpoints: each url once (repeated: {twice})")
        return self

    def backoff_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt (1, 2, ...): exponential, capped."""
        return min(self.backoff_initial_s * 2 ** min(attempts - 1, 60), self.backoff_max_s)


class GroundStationConfig(BaseModel):
    """The ground station: which broker to listen to, where to store, how long to keep.

    Several aggregators can share the load of one broker with `share_group`: each needs its own
    `mqtt.client_id` (the broker keeps one persistent session per client id) and the same database.
    """

    # The database URL may carry a password: keep inputs out of validation messages.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    mqtt: MqttConfig = Field(
        default_factory=MqttConfig,
        title="MQTT",
        description="Broker to subscribe to (same model as the edge's). `client_id` should be set and stable: "
        "it names the persistent session that keeps events queued while the ground station is down.",
    )
    database_url: str = Field(
        "sqlite:///~/.local/share/smarteye/ground-station.sqlite",
        validate_default=True,
        title="Database URL",
        description="SQLAlchemy URL: sqlite:///path (~ is expanded) or postgresql+psycopg://user:pass@host/db.",
    )
    share_group: str | None = Field(
        None,
        title="Shared subscription group",
        description="MQTT 5 shared subscription group: aggregators with the same group split the events "
        "between them (each event goes to one of them). Unset: a plain subscription gets every event.",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        le=0xFFFFFFFF,
        title="Session expiry",
        description="How long (s) the broker keeps this aggregator's session, and queues its events, while it is "
        "disconnected. The broker's own queue limits (max_queued_messages) also apply.",
    )
    retention_days: float | None = Field(
        30,
        gt=0,
        title="Retention (days)",
        description="Event messages received longer ago than this are deleted. Unset: no age limit.",
    )
    retention_max_events: int | None = Field(
        5_000_000,
        ge=1,
        title="Retention (events)",
        description="Most event messages kept; the oldest received are deleted beyond this. Unset: no limit.",
    )
    retention_interval_s: float = Field(
        600,
        gt=0,
        title="Retention interval",
        description="How often (s) the aggregator applies the retention limits.",
    )
    batch_size: int = Field(
        500,
        ge=1,
        le=10_000,
        title="Batch size",
        description="Most messages written to the database in one transaction.",
    )
    batch_linger_s: float = Field(
        0.05,
        ge=0,
        le=5,
        title="Batch linger",
        description="Longest the writer waits for a batch to fill before writing it: a little latency "
        "buys far fewer, larger transactions under load.",
    )
    web: WebConfig = Field(default_factory=WebConfig, title="Web", description="The web UI and API server.")
    video: LiveVideoConfig = Field(
        default_factory=LiveVideoConfig, title="Live video", description="Relay of the edge nodes' video to browsers."
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig, title="Alerts", description="What the station keeps of the nodes' alerts."
    )
    webhooks: WebhooksConfig = Field(
        default_factory=WebhooksConfig,
        title="Webhooks",
        description="Alerts POSTed, signed, to other systems (X-SmartEye-Signature, see docs/alerts.md).",
    )
    command: CommandConfig = Field(
        default_factory=CommandConfig,
        title="Cross-command",
        description="Vehicles the station may command over MAVLink, and the limits of a look flight.",
    )
    cot: CotConfig = Field(
        default_factory=CotConfig,
        title="Cursor on Target",
        description="Geolocated detections and alerts as CoT events for TAK/ATAK, over UDP or TCP.",
    )
    queue_max: int = Field(
        20_000,
        ge=1,
        title="Queue size",
        description="Bounded hand-off between the MQTT thread and the database writer. It also sets how many "
        "messages the broker may have in flight to this aggregator (MQTT 5 receive maximum, at most 65535).",
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("share_group")
    @classmethod
    def _check_share_group(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in "/+#\x00")):
            raise ValueError("share_group must be a non-empty name without '/', '+', '#' or NUL")
        return value

    @model_validator(mode="after")
    def _check_batch(self) -> GroundStationConfig:
        if self.batch_size > self.queue_max:
            raise ValueError("batch_size must not exceed queue_max")
        return self

    @property
    def redacted_database_url(self) -> str:
        """The database URL for logs and status: a password is replaced by ***."""
        return make_url(self.database_url).render_as_string(hide_password=True)
