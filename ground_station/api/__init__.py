"""The ground station's HTTP API, WebSocket push and page serving."""
