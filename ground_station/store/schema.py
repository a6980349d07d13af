"""Table definitions of the current schema (bump SCHEMA_VERSION and add a migration when they change).

Times are epoch seconds as double precision, like the wire messages: no time-zone conversions, and
SQLite and PostgreSQL store and compare them identically.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 1

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

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_time", sa.Double, nullable=False),
)
