"""Alerts POSTed to other systems: signed (signing.py), delivered and retried from the database by one
worker thread per endpoint (dispatcher.py), never in the ingest path's way."""

from ground_station.webhooks.dispatcher import WebhookDispatcher
from ground_station.webhooks.signing import SIGNATURE_HEADER, sign, verify

__all__ = ["SIGNATURE_HEADER", "WebhookDispatcher", "sign", "verify"]
