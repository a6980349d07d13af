"""Configuration of multi-object tracking and of the event lifecycle built on it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from smarteye.strict import StrictModel


class TrackerType(StrEnum):
    BYTETRACK = "bytetrack"
    BOTSORT = "botsort"


class TrackerConfig(StrictModel):
    """Ultralytics tracker settings (ByteTrack by default: no appearance model, cheap on CPU)."""

    type: TrackerType = Field(TrackerType.BYTETRACK, title="Tracker", description="bytetrack or botsort.")
    track_high_thresh: float = Field(0.25, gt=0, lt=1, title="High threshold", description="First association.")
    track_low_thresh: float = Field(0.1, gt=0, lt=1, title="Low threshold", description="Second association.")
    new_track_thresh: float = Field(0.25, gt=0, lt=1, title="New track threshold", description="Start a track.")
    track_buffer: int = Field(30, ge=1, le=1000, title="Track buffer", description="Frames a lost track is kept.")
    match_thresh: float = Field(0.8, gt=0, le=1, title="Match threshold", description="Association IoU cost.")


class EventsConfig(StrictModel):
    """When a tracked object produces `new`, `update` and `end` events."""

    min_hits: int = Field(
        3, ge=1, le=100, title="Minimum hits", description="Frames an object must be seen before its `new` event."
    )
    min_score: float = Field(
        0.4, gt=0, lt=1, title="Minimum top score", description="An object needs this score once to be reported."
    )
    end_after_s: float = Field(
        2.0, gt=0, le=600, title="End after", description="Seconds unseen before the `end` event."
    )
    update_interval_s: float = Field(
        1.0, ge=0, le=3600, title="Update interval", description="At most one `update` per object per interval."
    )
    update_min_move: float = Field(
        0.05,
        ge=0,
        le=1,
        title="Minimum move",
        description="An `update` needs the box centre to move this fraction of the frame diagonal, "
        "or the label/top score to change.",
    )
    max_tracks_per_stream: int = Field(
        500, ge=1, le=100_000, title="Maximum tracks", description="Bound on live objects per stream."
    )
