"""The rules-and-alerts side of the API, one module per resource: alerts, counts, rules, audit, webhooks.

Their routes are added to the app itself, like the others (not through include_router, whose routers
this FastAPI includes lazily: they would not be in `app.routes`, where the route tests enumerate every
route to check its authentication)."""

from __future__ import annotations

from fastapi import FastAPI

from ground_station.api.access import Require
from ground_station.api.alerts import add_alert_routes
from ground_station.api.audit import add_audit_routes
from ground_station.api.counts import add_counts_routes
from ground_station.api.rules import add_rules_routes
from ground_station.api.webhooks import add_webhooks_routes
from ground_station.config import WebhooksConfig
from ground_station.rules import RulesPush
from ground_station.store import Store
from ground_station.webhooks import WebhookDispatcher


def add_alerting_routes(
    app: FastAPI,
    store: Store,
    require: Require,
    rules_push: RulesPush | None = None,
    webhooks: WebhookDispatcher | None = None,
) -> None:
    """`rules_push` None: rules are stored but not published (an app without MQTT, e.g. in tests);
    `webhooks` None: no endpoints configured."""
    add_alert_routes(app, store, require)
    add_counts_routes(app, store, require)
    add_rules_routes(app, store, require, rules_push or RulesPush(store))
    add_audit_routes(app, store, require)
    add_webhooks_routes(app, store, require, webhooks.config if webhooks is not None else WebhooksConfig(), webhooks)
