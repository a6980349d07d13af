"""The ground station process: aggregator (MQTT → store), retention, live push, and the web app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import uvicorn
from argon2 import PasswordHasher

from ground_station.api.app import create_app
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.auth.accounts import Accounts
from ground_station.command.commander import Commander
from ground_station.config import GroundStationConfig
from ground_station.feeds.cot import CotSender
from ground_station.ingest import Aggregator
from ground_station.metrics import StationCollector, StationMetrics
from ground_station.rules import RulesPush
from ground_station.snapshots import Snapshots
from ground_station.store.store import Store
from ground_station.video.relay import VideoRelay
from ground_station.web.tls import fingerprint, tls_files
from smarteye.media.webrtc import WhepServer

log = logging.getLogger("ground_station")


class GroundStation:
    """Everything the ground station runs, started and stopped together (`hasher`: see Accounts)."""

    def __init__(self, config: GroundStationConfig, *, hasher: PasswordHasher | None = None) -> None:
        self.config = config
        self.store = Store(config.database_url)
        self.accounts = Accounts(self.store.engine, session_ttl_s=config.web.session_ttl_s, hasher=hasher)
        self.snapshots = Snapshots(self.store.engine)
        self.hub = LiveHub()
        self.telemetry = TelemetryCache()
        self.relay = VideoRelay(config.video.max_streams, max_streams_per_node=config.video.max_streams_per_node)
        self.whep = WhepServer(
            config.video.ice_servers, max_sessions=config.video.max_viewers,
            max_sessions_per_principal=config.video.max_viewers_per_principal, cors_origins=config.video.cors_origins,
        )  # fmt: skip
        self.aggregator = Aggregator(config, self.store, snapshots=self.snapshots, on_message=self._on_message)
        self.metrics = StationMetrics(StationCollector(self.hub, self.relay, self.whep, self.aggregator))
        self.rules_push = RulesPush(self.store, config.mqtt.topic_prefix, publisher=self.aggregator)
        self.aggregator.add_connect_listener(self.rules_push.wake)
        self.commander = Commander(
            config.command, audit=self.store.record_audit, confirmations=self.store.record_confirmation
        )
        self.cot = CotSender(config.cot)
        self.app = create_app(
            self.store, self.accounts, self.snapshots, self.hub, self.telemetry, metrics=self.metrics,
            secure_cookies=config.web.secure_cookies, relay=self.relay, whep=self.whep,
            tiles_url=config.web.tiles_url, tiles_attribution=config.web.tiles_attribution,
            rules_push=self.rules_push, webhooks=self.aggregator.webhooks, commander=self.commander,
        )  # fmt: skip
        self.tls = tls_files(config.web)  # None: plain HTTP
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app, host=config.web.host, port=config.web.port, log_level="warning", lifespan="off",
                ssl_certfile=self.tls.cert if self.tls else None, ssl_keyfile=self.tls.key if self.tls else None,
                # uvicorn's own X-Forwarded-* handling, for the configured proxies only (its default believes
                # 127.0.0.1, so any local process could pick the address the login throttle counts).
                proxy_headers=bool(config.web.trusted_proxies),
                forwarded_allow_ips=[str(network) for network in config.web.trusted_proxies],
            )
        )  # fmt: skip
        self._thread: threading.Thread | None = None

    def _on_message(self, kind: str, node: str, stream: str | None, payload: str) -> None:
        """Every valid message, as it arrives (events once stored): pushed live; telemetry also kept
        for first paint; a stored event's latency measured here, where its payload passes anyway."""
        if kind == "event":
            self.metrics.event_stored(payload)
        elif kind == "telemetry" and stream is not None:
            self.telemetry.update(node, stream, payload)
        self.cot.on_message(kind, node, payload)
        self.commander.on_message(kind, node, payload)
        self.hub.publish(payload, kind=kind)  # the kind from the topic decides who may see it

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.config.web.host}:{self.config.web.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.aggregator.start()
        self.rules_push.start()
        self.commander.start()
        self.cot.start()
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.05)
        log.info("ground station: web UI and API on %s", self.url)
        if self.tls is not None:  # to compare with what a browser shows before trusting a self-signed certificate
            log.info("ground station: TLS certificate %s, SHA-256 %s", self.tls.cert, fingerprint(self.tls.cert))

    def stop(self) -> None:
        loop = self.whep.loop  # the web server's loop, where the viewers' peer connections live
        if loop is not None and loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.whep.close_all(), loop).result(5)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.commander.stop()
        self.cot.stop()
        self.rules_push.stop()
        self.aggregator.stop()
        self.store.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                time.sleep(0.5)
        finally:
            self.stop()
