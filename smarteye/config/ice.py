"""STUN/TURN servers handed to WebRTC peers, by the edge's WHEP endpoint and by the station's relay."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IceServer(BaseModel):
    """A STUN or TURN server for WebRTC peers behind NAT (TURN needs the credentials)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    urls: str = Field(
        pattern=r"^(stun|stuns|turn|turns):", title="URL", description="e.g. stun:stun.example.org:3478 or "
        "turn:turn.example.org:3478?transport=udp",
    )  # fmt: skip
    username: str | None = Field(None, title="Username", description="TURN user name.")
    credential: str | None = Field(None, title="Credential", description="TURN password.")
