"""Sliced inference: the tile grid of a large frame, which tiles run on this frame, and the merge of their boxes.

Why hand-written rather than `sahi`: the grid is a dozen lines of arithmetic, and sahi's merge works on one
Python `ObjectPrediction` object per box with torch tensors, where a 4K aerial frame has hundreds of boxes
per frame on the hot path; here boxes stay in the NumPy rows ultralytics returns (`Boxes.data`: x1 y1 x2 y2
conf cls, `OBB.data`: cx cy w h r conf cls). The merge follows sahi's greedy non-maximum merging with the
intersection-over-smaller metric: a box cut by a tile border lies inside the whole box found by the
neighbouring tile, so its IoU with it can be low while its IoS is ~1.
"""

from __future__ import annotations

import math

import numpy as np


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets along one axis: steps of tile × (1 − overlap), the last tile flush with the far edge."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    return [min(i * step, length - tile) for i in range(count)]


def tile_grid(width: int, height: int, tile: int, overlap: float) -> np.ndarray:
    """(T, 4) int boxes x1 y1 x2 y2 covering the frame, row by row; neighbours share ≥ `overlap` of a tile."""
    xs, ys = tile_starts(width, tile, overlap), tile_starts(height, tile, overlap)
    return np.array(
        [(x, y, min(x + tile, width), min(y + tile, height)) for y in ys for x in xs], dtype=np.int64
    ).reshape(-1, 4)


def shift_rows(rows: np.ndarray, dx: float, dy: float, oriented: bool) -> np.ndarray:
    """Rows of a tile's result moved into frame coordinates."""
    out = rows.astype(np.float32, copy=True)
    if oriented:
        out[:, 0] += dx
        out[:, 1] += dy
    else:
        out[:, [0, 2]] += dx
        out[:, [1, 3]] += dy
    return out


def merge_boxes(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum merge per class with intersection over the smaller box.

    Returns (kept indices, their boxes grown to the union of the boxes merged into them). The best-scored box
    of a group is kept with its score; the others are dropped, their extent added to the kept box.
    """
    n = len(xyxy)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.float32)
    boxes = xyxy.astype(np.float64)
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    left = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    top = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    right = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    bottom = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    smaller = np.minimum(area[:, None], area[None, :])
    ios = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    same = cls[:, None] == cls[None, :]
    match = (ios >= threshold) & same
    order = np.argsort(-conf, kind="stable")
    taken = np.zeros(n, dtype=bool)
    kept: list[int] = []
    merged: list[np.ndarray] = []
    for i in order:
        if taken[i]:
            continue
        group = match[i] & ~taken
        group[i] = True
        taken |= group
        members = boxes[group]
        kept.append(int(i))
        merged.append(np.array([members[:, 0].min(), members[:, 1].min(), members[:, 2].max(), members[:, 3].max()]))
    return np.array(kept, dtype=np.int64), np.array(merged, dtype=np.float32).reshape(-1, 4)


class TilePlan:
    """One stream's tiles: which run on the next frame (in turn), and each tile's latest result rows.

    Running only `per_frame` tiles bounds the stream's cost; a tile not run on a frame contributes the rows
    it produced when it last ran (at most ceil(T / per_frame) − 1 frames old), so the tracker keeps seeing
    every object. Bounded: one row array per tile of one grid.
    """

    def __init__(self, width: int, height: int, tile: int, overlap: float, per_frame: int | None) -> None:
        self.size = (width, height)
        self.tile = tile
        self.tiles = tile_grid(width, height, tile, overlap)
        self.per_frame = len(self.tiles) if per_frame is None else min(per_frame, len(self.tiles))
        self._cursor = 0
        self._rows: dict[int, np.ndarray] = {}

    def next_tiles(self) -> list[int]:
        """Indices of the tiles to run on this frame, continuing where the previous frame stopped."""
        count = len(self.tiles)
        chosen = [(self._cursor + i) % count for i in range(self.per_frame)]
        self._cursor = (self._cursor + self.per_frame) % count
        return chosen

    def store(self, index: int, rows: np.ndarray) -> None:
        self._rows[index] = rows

    def rows(self) -> list[np.ndarray]:
        """The latest rows of every tile that has run, in frame coordinates."""
        return [self._rows[i] for i in sorted(self._rows)]
