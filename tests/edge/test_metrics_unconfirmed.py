"""The spool's unconfirmed events on /metrics, beside its depth (end-to-end storage confirmations)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge.metrics import EdgeMetrics


def test_unconfirmed_events_are_a_gauge_next_to_the_spool_depth() -> None:
    metrics = EdgeMetrics("n1")
    figures = {"depth": 7, "unconfirmed": 4}
    metrics.add_totals(dict, lambda: figures["depth"], spool_unconfirmed=lambda: figures["unconfirmed"])
    figures["unconfirmed"] = 5  # read at scrape time
    text = generate_latest(metrics.registry).decode()
    families = text_string_to_metric_families(text)
    values = {s.name: s.value for f in families for s in f.samples if s.labels == {"node": "n1"}}
    assert values["smarteye_edge_spool_depth"] == 7
    assert values["smarteye_edge_spool_unconfirmed"] == 5
