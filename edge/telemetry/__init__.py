"""Telemetry decoders: flight-controller and in-video metadata turned into typed sensor state."""
