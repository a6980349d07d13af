"""Tile grid, tile turns and the merge of boxes across tiles (pure arithmetic, constructed boxes)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.detect.slicing import TilePlan, merge_boxes, shift_rows, tile_grid, tile_starts


@pytest.mark.parametrize(("width", "height"), [(3840, 2160), (1920, 1080), (1000, 700), (641, 640)])
def test_the_grid_covers_every_pixel_and_neighbours_share_the_overlap(width: int, height: int) -> None:
    tile, overlap = 640, 0.2
    tiles = tile_grid(width, height, tile, overlap)
    covered = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert x2 - x1 == min(tile, width) and y2 - y1 == min(tile, height), "every tile is a full tile"
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    for starts, length in ((tile_starts(width, tile, overlap), width), (tile_starts(height, tile, overlap), height)):
        assert starts[0] == 0 and starts[-1] == max(0, length - tile)
        for a, b in itertools.pairwise(starts):
            assert tile - (b - a) >= overlap * tile - 1, "neighbours share at least the overlap"


def test_a_frame_no_larger_than_a_tile_is_one_tile() -> None:
    assert tile_grid(640, 480, 640, 0.2).tolist() == [[0, 0, 640, 480]]


def test_a_box_cut_by_a_tile_border_merges_into_the_whole_one() -> None:
    # A car at x 600..660 across the border of tile A (x < 640); tile B (starting at 512) sees it whole.
    tile_a = np.array([[600, 100, 640, 130, 0.6, 2]], dtype=np.float32)  # the cut part, in frame coordinates
    tile_b = shift_rows(np.array([[88, 100, 148, 130, 0.8, 2]], dtype=np.float32), 512, 0, oriented=False)
    other = np.array([[700, 300, 760, 330, 0.7, 2]], dtype=np.float32)  # another car, elsewhere
    rows = np.concatenate([tile_a, tile_b, other])
    kept, union = merge_boxes(rows[:, :4], rows[:, 4], rows[:, 5], threshold=0.5)
    assert sorted(kept.tolist()) == [1, 2], "the whole box (best score) and the other car remain"
    assert union[kept.tolist().index(1)].tolist() == [600, 100, 660, 130]


def test_the_merge_grows_the_kept_box_to_its_group() -> None:
    # The cut part scored higher than the whole box: it is kept, grown to cover the whole object.
    rows = np.array([[600, 100, 640, 130, 0.9, 2], [600, 98, 662, 131, 0.5, 2]], dtype=np.float32)
    kept, union = merge_boxes(rows[:, :4], rows[:, 4], rows[:, 5], threshold=0.5)
    assert kept.tolist() == [0] and union.tolist() == [[600, 98, 662, 131]]


def test_neighbours_of_another_class_or_barely_touching_stay_apart() -> None:
    rows = np.array(
        [
            [0, 0, 50, 20, 0.9, 2],  # car
            [10, 0, 60, 20, 0.8, 7],  # truck over it: another class
            [45, 0, 95, 20, 0.7, 2],  # car touching the first: 5 of 50 px shared
        ],
        dtype=np.float32,
    )
    kept, _ = merge_boxes(rows[:, :4], rows[:, 4], rows[:, 5], threshold=0.5)
    assert sorted(kept.tolist()) == [0, 1, 2]


def test_no_boxes_merge_to_none() -> None:
    kept, union = merge_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5)
    assert len(kept) == 0 and union.shape == (0, 4)


def test_oriented_rows_shift_only_their_centre() -> None:
    rows = np.array([[10, 20, 30, 8, 0.5, 0.9, 1]], dtype=np.float32)
    assert np.allclose(shift_rows(rows, 100, 200, oriented=True), [[110, 220, 30, 8, 0.5, 0.9, 1]])


def test_a_bounded_plan_visits_every_tile_in_turn_and_keeps_each_tiles_latest_rows() -> None:
    plan = TilePlan(3840, 2160, 640, 0.2, per_frame=4)
    count = len(plan.tiles)
    assert count == 8 * 4, "3840 / 2160 px in 640 px tiles that step 512 px: 8 columns, 4 rows"
    seen: list[int] = []
    for frame in range(8):
        chosen = plan.next_tiles()
        assert len(chosen) == 4, "never more than the budget"
        seen += chosen
        for index in chosen:
            plan.store(index, np.full((1, 6), frame, dtype=np.float32))
    assert sorted(seen) == list(range(count)), "8 frames × 4 tiles visit each of the 32 tiles once"
    rows = plan.rows()
    assert len(rows) == count and [int(r[0, 0]) for r in rows] == [i // 4 for i in range(count)]
    assert plan.next_tiles() == [0, 1, 2, 3], "then the turn starts over"


def test_a_budget_above_the_grid_runs_every_tile() -> None:
    plan = TilePlan(1000, 700, 640, 0.2, per_frame=50)
    assert plan.next_tiles() == list(range(len(plan.tiles)))
