"""Ground station: aggregator, store, API and web UI for every edge node (built on smarteye.wire.messages)."""
