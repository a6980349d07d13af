"""A ground station app with a video relay, node e1's edge token and a viewer token, for live-video tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI

from ground_station.api.app import create_app
from ground_station.api.live import LiveHub, TelemetryCache
from ground_station.auth.accounts import Accounts
from ground_station.auth.roles import Role
from ground_station.snapshots import Snapshots
from ground_station.store.store import Store
from ground_station.video.relay import VideoRelay
from smarteye.media.webrtc import WhepServer
from tests.support.accounts import FAST_HASHER


class VideoStation(SimpleNamespace):
    app: FastAPI
    relay: VideoRelay
    whep: WhepServer
    accounts: Accounts
    edge_token: str
    viewer_token: str


@contextlib.contextmanager
def open_video_station(folder: Path, whep: WhepServer | None = None) -> Iterator[VideoStation]:
    """Node e1's edge token may push video; the `wall` viewer token may only watch. The store is in `folder`."""
    store = Store(f"sqlite:///{folder / 'gs.sqlite'}")
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    relay = VideoRelay()
    whep = WhepServer() if whep is None else whep
    app = create_app(
        store, accounts, Snapshots(store.engine), LiveHub(), TelemetryCache(), secure_cookies=False, relay=relay,
        whep=whep,
    )  # fmt: skip
    _, edge_token = accounts.create_token("e1", Role.EDGE, "test")
    _, viewer_token = accounts.create_token("wall", Role.VIEWER, "test")
    try:
        yield VideoStation(
            app=app, relay=relay, whep=whep, accounts=accounts, edge_token=edge_token, viewer_token=viewer_token
        )
    finally:
        store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
