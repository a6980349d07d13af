"""Table definitions of the current schema (bump SCHEMA_VERSION and add a migration when they change).

Times are epoch seconds as double precision, like the wire messages: no time-zone conversions, and
SQLite and PostgreSQL store and compare them identically.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 3  # 2: alerts, alert messages and media, zone counts, rules versions, audit log, webhooks
#                    3: alert confirmations (what a drone sent to look found there)

metadata = sa.MetaData()

# One row per MQTT event message (not per tracked object): the primary key is the message `id`, so a
# QoS-1 redelivery can never be stored twice.  A future `snapshots` table will reference `events.id`.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("track_id", sa.Integer, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("class_id", sa.Integer, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("top_score", sa.Double, nullable=False),
    sa.Column("box_x1", sa.Double, nullable=False),
    sa.Column("box_y1", sa.Double, nullable=False),
    sa.Column("box_x2", sa.Double, nullable=False),
    sa.Column("box_y2", sa.Double, nullable=False),
    sa.Column("norm_x1", sa.Double, nullable=False),
    sa.Column("norm_y1", sa.Double, nullable=False),
    sa.Column("norm_x2", sa.Double, nullable=False),
    sa.Column("norm_y2", sa.Double, nullable=False),
    sa.Column("frame_width", sa.Integer, nullable=False),
    sa.Column("frame_height", sa.Integer, nullable=False),
    sa.Column("capture_time", sa.Double, nullable=False),
    sa.Column("publish_time", sa.Double, nullable=False),
    sa.Column("received_time", sa.Double, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("end_reason", sa.Text),
    # The message exactly as received (validated JSON): new wire fields are never lost, and the
    # API can return it without re-serialising.
    sa.Column("payload", sa.Text, nullable=False),
    # Newest-first listings page on (capture_time, id); the other indexes serve the usual filters.
    sa.Index("ix_events_capture", "capture_time", "id"),
    sa.Index("ix_events_stream_capture", "node", "stream", "capture_time"),
    sa.Index("ix_events_label_capture", "label", "capture_time"),
    sa.Index("ix_events_event_id", "event_id", "seq"),
    sa.Index("ix_events_received", "received_time"),  # retention works on the ground station's clock
)

# Latest status of every stream (status messages are state, not history).
stream_health = sa.Table(
    "stream_health",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("source_kind", sa.Text, nullable=False),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("fps", sa.Double, nullable=False),
    sa.Column("processed_fps", sa.Double, nullable=False),
    sa.Column("frames", sa.BigInteger, nullable=False),
    sa.Column("processed", sa.BigInteger, nullable=False),
    sa.Column("dropped", sa.BigInteger, nullable=False),
    sa.Column("reconnects", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Double),
    sa.Column("last_frame_time", sa.Double),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

# Latest availability of every node (`offline` is also the broker-sent last will, without a time).
node_availability = sa.Table(
    "node_availability",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("time", sa.Double),
    sa.Column("last_seen", sa.Double, nullable=False),
)

# --------------------------------------------------------------------- v2: rules and alerts

# One row per alert (situation): the newest state by `seq`, the times of its transitions, and what a
# supervisor did about it.  `end` is final: a later message (the clip's `update`) adds to it, never reopens it.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("rule_kind", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("zone", sa.Text),
    sa.Column("line", sa.Text),
    sa.Column("direction", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("objects", sa.Text, nullable=False),  # JSON list of AlertObject, as of the newest message
    sa.Column("line_counts", sa.Text),  # JSON {direction: n}
    sa.Column("start_time", sa.Double, nullable=False),
    sa.Column("update_time", sa.Double, nullable=False),  # capture time of the newest message
    sa.Column("end_time", sa.Double),
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("snapshot", sa.Boolean, nullable=False),  # announced by the node
    sa.Column("clip_start", sa.Double),
    sa.Column("clip_end", sa.Double),
    sa.Column("clip_bytes", sa.Integer),
    sa.Column("first_received", sa.Double, nullable=False),
    sa.Column("last_received", sa.Double, nullable=False),
    sa.Column("acked_by", sa.Text),
    sa.Column("acked_time", sa.Double),
    sa.Column("resolved_by", sa.Text),
    sa.Column("resolved_time", sa.Double),
    sa.Column("payload", sa.Text, nullable=False),  # the newest message as received
    sa.Index("ix_alerts_start", "start_time", "alert_id"),
    sa.Index("ix_alerts_stream_start", "node", "stream", "start_time"),
    sa.Index("ix_alerts_received", "last_received"),
)

# Every alert message (history and dedup: the primary key is the message `id`, like events).
alert_messages = sa.Table(
    "alert_messages",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("alert_id", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("capture_time", sa.Double, nullable=False),
    sa.Column("received_time", sa.Double, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_alert_messages_alert", "alert_id", "seq"),
    sa.Index("ix_alert_messages_received", "received_time"),
)

# An alert's snapshot (JPEG) and clip (MP4).  Keyed by the sending node too: a node can never replace
# or pose as another node's evidence (the API serves only the alert's own node's media).
alert_media = sa.Table(
    "alert_media",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),  # snapshot | clip
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("received_time", sa.Double, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Index("ix_alert_media_received", "received_time"),
)

# Zone and line counts per stream over time (a redelivery has the same node time: dropped by the key).
zone_counts = sa.Table(
    "zone_counts",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("time", sa.Double, primary_key=True),
    sa.Column("zones", sa.Text, nullable=False),  # JSON {zone: n}
    sa.Column("lines", sa.Text, nullable=False),  # JSON {line: {in: n, out: n}}
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("received_time", sa.Double, nullable=False),
    sa.Index("ix_zone_counts_received", "received_time"),
)

# Every saved version of a stream's rules (NULL rules: cleared, the stream runs its node's YAML).
rules_versions = sa.Table(
    "rules_versions",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("rules", sa.Text),  # RuleSet JSON
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("published_time", sa.Double),  # when the broker acknowledged the retained message
)

# Who did what, when: rules edits, acknowledgements, resolves.  Never purged with the events.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON
    sa.Index("ix_audit_time", "time"),
)

# Webhook deliveries: written in the transaction that stores the alert message, so an alert accepted
# (and acknowledged to the broker) always has its deliveries, across restarts.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),  # the alert message's `id`
    sa.Column("alert_id", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_time", sa.Double, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("created_time", sa.Double, nullable=False),
    sa.Column("finished_time", sa.Double),
    sa.UniqueConstraint("url", "message_id", name="uq_webhook_deliveries_url_message"),
    sa.Index("ix_webhook_deliveries_due", "state", "url", "next_attempt_time"),
    sa.Index("ix_webhook_deliveries_created", "created_time"),
)

V2_TABLES = (alerts, alert_messages, alert_media, zone_counts, rules_versions, audit_log, webhook_deliveries)

# What a drone sent to look at an alert found there: confirmed (a detection on its stream near the target
# after arrival) or not_seen (none within the window). One row per alert: the latest look.
alert_confirmations = sa.Table(
    "alert_confirmations",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),  # confirmed | not_seen
    sa.Column("vehicle", sa.Text, nullable=False),
    sa.Column("pilot", sa.Text, nullable=False),
    sa.Column("look_time", sa.Double, nullable=False),  # when the pilot confirmed the flight
    sa.Column("time", sa.Double, nullable=False),  # capture time of the confirming frame, or when the window ran out
    sa.Column("node", sa.Text),
    sa.Column("stream", sa.Text),
    sa.Column("event_id", sa.Text),  # the confirming object (its snapshot is the drone's picture)
    sa.Column("label", sa.Text),
    sa.Column("distance_m", sa.Double),  # from the target
)
V3_TABLES = (alert_confirmations,)

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_time", sa.Double, nullable=False),
)
