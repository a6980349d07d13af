"""The source's real frame rate from its frames' timestamps: exact pts win over jittery capture times, frames
skipped by the source are accounted for by their sequence numbers, glitches are ignored."""

from __future__ import annotations

import random

import pytest

from edge.outputs.video.rate import SourceRate


def test_rate_from_pts_ignores_capture_time_jitter() -> None:
    rate = SourceRate()
    jitter = random.Random(4)
    for seq in range(1, 40):
        rate.observe(seq, seq / 12.5, 1000 + seq / 12.5 + jitter.uniform(-0.03, 0.03))
    assert rate.fps == pytest.approx(12.5)


def test_skipped_frames_do_not_halve_the_rate_and_capture_times_serve_without_pts() -> None:
    rate = SourceRate()
    for seq in (1, 2, 4, 5, 7, 8, 10):  # every third frame missing on the way
        rate.observe(seq, None, 50 + seq / 30)
    assert rate.fps == pytest.approx(30)


def test_unknown_until_a_few_frames_and_after_a_reset() -> None:
    rate = SourceRate()
    rate.observe(1, 0.0, 0.0)
    rate.observe(2, 0.1, 0.1)
    assert rate.fps is None  # one interval is not trusted yet
    rate.observe(3, 0.2, 0.2)
    assert rate.fps == pytest.approx(10)
    rate.reset()
    assert rate.fps is None


def test_a_pts_jump_or_restart_is_not_a_rate() -> None:
    rate = SourceRate()
    for seq in range(1, 10):
        rate.observe(seq, seq / 25, seq / 25)
    rate.observe(10, 0.0, 10.0)  # the source restarted its clock
    rate.observe(11, 600.0, 10.04)  # and jumped
    assert rate.fps == pytest.approx(25)
