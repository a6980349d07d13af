"""Delivering alert messages to webhook endpoints.

The ingest writer never waits for a receiver: in the transaction that stores a new alert message it
adds one pending delivery per endpoint that wants it (`targets`), and after the commit it only
`wake`s the workers.  Each endpoint has its own worker thread (a slow or dead receiver delays nobody
else), which POSTs its due deliveries oldest first with httpx, signed (signing.py), and records each
attempt in the database: delivered on a 2xx answer; otherwise pending again after an exponential
backoff (capped), until the last attempt marks it failed with the error.  Since the state is in the
database, a restart resumes where it stopped; a delivery whose attempt was cut short by a crash is
tried again once its lease (the attempt's timeout and a margin) has run out.  Pending deliveries are
bounded per endpoint (the oldest beyond `max_pending` are failed), so a receiver gone for long cannot
grow the database without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import httpx

from ground_station.config import WebhookEndpoint, WebhooksConfig
from ground_station.store import Delivery, Store
from ground_station.webhooks.signing import SIGNATURE_HEADER, sign
from smarteye.config.urls import redact_text, redact_url
from smarteye.wire.messages import Alert
from smarteye.wire.rules import Severity

log = logging.getLogger(__name__)

LEASE_MARGIN_S = 30.0  # beyond the POST timeout: how long a claimed delivery stays with its worker
IDLE_WAIT_S = 5.0  # longest sleep without a wake-up (another station may have added deliveries)
BOUND_INTERVAL_S = 60.0  # how often the pending bound is applied
ERROR_WAIT_S = 2.0  # after a database error
BATCH = 20
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity)}
USER_AGENT = "SmartEye-Webhook/1"


@dataclass(slots=True)
class EndpointStats:
    """Since start, per endpoint (the database has the full record)."""

    attempts: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    last_error: str | None = None


class WebhookDispatcher:
    """Routes new alert messages to endpoints (`targets`, called in the ingest transaction) and runs
    one delivery worker per endpoint."""

    def __init__(self, config: WebhooksConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._stop = threading.Event()
        self._workers = [_Worker(endpoint, config, store, self._stop) for endpoint in config.endpoints]
        self._started = False

    @property
    def urls(self) -> list[str]:
        return [endpoint.url for endpoint in self.config.endpoints]

    def targets(self, alert: Alert) -> list[str]:
        """The endpoints this alert message goes to (by their severity and state filters)."""
        rank = _SEVERITY_RANK[alert.severity]
        return [
            e.url for e in self.config.endpoints if alert.state in e.states and rank >= _SEVERITY_RANK[e.min_severity]
        ]

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            dropped = self.store.fail_unconfigured_deliveries(self.urls, time.time())
            if dropped:
                log.warning("webhooks: %d pending deliveries to endpoints no longer configured marked failed", dropped)
        except Exception as error:  # the workers retry their own work; this sweep runs again next start
            log.warning("webhooks: cannot check pending deliveries: %s", error)
        for worker in self._workers:
            worker.start()

    def wake(self) -> None:
        """New deliveries were committed: due at once."""
        for worker in self._workers:
            worker.wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (an attempt in flight finishes or times out; pending ones stay pending)."""
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.1, deadline - time.monotonic()))
        for worker in self._workers:
            worker.close()

    def stats(self) -> dict[str, EndpointStats]:
        return {worker.endpoint.url: worker.stats for worker in self._workers}


class _Worker:
    """Delivers one endpoint's pending deliveries, oldest first."""

    def __init__(self, endpoint: WebhookEndpoint, config: WebhooksConfig, store: Store, stop: threading.Event) -> None:
        self.endpoint = endpoint
        self.shown_url = redact_url(endpoint.url)  # for logs: a token in the URL stays out of them
        self.config = config
        self.store = store
        self.stats = EndpointStats()
        self.wake = threading.Event()
        self._stop = stop
        self._secret = endpoint.secret.get_secret_value()
        self._client = httpx.Client(timeout=config.timeout_s, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT})  # fmt: skip
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._next_bound = 0.0

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def close(self) -> None:
        if not self._thread.is_alive():
            self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._bound()
                if not self._deliver_due():
                    self._sleep()
            except Exception as error:  # the database is away, or a bug: never let the thread die
                self.stats.last_error = redact_text(
                    f"{type(error).__name__}: {error}".splitlines()[0], self.endpoint.url
                )
                log.warning("webhook %s: %s; retrying", self.shown_url, self.stats.last_error)
                self._stop.wait(ERROR_WAIT_S)

    def _bound(self) -> None:
        if time.monotonic() < self._next_bound:
            return
        self._next_bound = time.monotonic() + BOUND_INTERVAL_S
        dropped = self.store.bound_deliveries(self.endpoint.url, self.config.max_pending, time.time())
        if dropped:
            self.stats.given_up += dropped
            log.warning("webhook %s: %d oldest pending deliveries dropped (over %d pending)", self.shown_url,
                        dropped, self.config.max_pending)  # fmt: skip

    def _deliver_due(self) -> bool:
        """Attempt what is due now; False if nothing was."""
        due = self.store.due_deliveries(self.endpoint.url, time.time(), BATCH)
        for delivery in due:
            if self._stop.is_set():
                break
            lease = time.time() + self.config.timeout_s + LEASE_MARGIN_S
            if self.store.claim_delivery(delivery, lease):
                self._attempt(delivery)
        return bool(due)

    def _sleep(self) -> None:
        next_due = self.store.next_delivery_due(self.endpoint.url)
        wait = IDLE_WAIT_S if next_due is None else min(max(next_due - time.time(), 0.0), IDLE_WAIT_S)
        if self.wake.wait(wait):
            self.wake.clear()

    def _attempt(self, delivery: Delivery) -> None:
        body = delivery.payload.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            "X-SmartEye-Delivery": str(delivery.id),
            "X-SmartEye-Message": delivery.message_id,
        }
        status: int | None = None
        self.stats.attempts += 1
        try:
            response = self._client.post(self.endpoint.url, content=body, headers=headers)
            status = response.status_code
            error = None if 200 <= status < 300 else f"HTTP {status} {response.reason_phrase}".strip()
        except httpx.HTTPError as failure:
            error = redact_text(f"{type(failure).__name__}: {failure}".splitlines()[0], self.endpoint.url)
        now = time.time()
        if error is None:
            assert status is not None
            self.store.delivery_succeeded(delivery.id, status, now)
            self.stats.delivered += 1
            return
        attempts = delivery.attempts + 1
        retry_at = now + self.config.backoff_s(attempts) if attempts < self.config.max_attempts else None
        self.store.delivery_failed(delivery.id, error, status, retry_at, now)
        self.stats.failed_attempts += 1
        self.stats.last_error = error
        if retry_at is None:
            self.stats.given_up += 1
            log.warning("webhook %s: delivery %d of %s failed for good after %d attempts: %s", self.shown_url,
                        delivery.id, delivery.message_id, attempts, error)  # fmt: skip
        else:
            log.info("webhook %s: delivery %d failed (%s); attempt %d in %.0f s", self.shown_url, delivery.id,
                     error, attempts + 1, retry_at - now)  # fmt: skip
