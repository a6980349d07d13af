"""The annotator: boxes in their class colours, drawn in place; class filter, labels and overlay switches."""

from __future__ import annotations

import numpy as np

from edge.config.video import AnnotationConfig
from edge.outputs.video.annotate import PALETTE, Annotator
from edge.track.tracker import TrackedBox

NAMES = {0: "person", 2: "car"}


def _box(class_id: int, x1: float = 40, y1: float = 60, x2: float = 120, y2: float = 140) -> TrackedBox:
    return TrackedBox(track_id=7, x1=x1, y1=y1, x2=x2, y2=y2, score=0.87, class_id=class_id)


def _blank() -> np.ndarray:
    return np.zeros((240, 320, 3), np.uint8)


def test_annotator_draws_the_box_in_its_class_colour_in_place() -> None:
    """The frame itself is annotated (no copy); the outline is at the box edge in the class's palette colour."""
    image = _blank()
    annotator = Annotator(AnnotationConfig(labels=False), NAMES)
    assert annotator.draw(image, [_box(2)]) is None  # type: ignore[func-returns-value]
    assert tuple(int(v) for v in image[100, 40]) == PALETTE[2]  # left edge, mid-height
    assert tuple(int(v) for v in image[140, 80]) == PALETTE[2]  # bottom edge
    assert not image[100, 80].any() and not image[5:50, :].any()  # inside and above untouched (no label)


def test_annotator_disabled_or_filtered_out_leaves_the_picture_alone() -> None:
    """`enabled: false` gives the plain picture; `classes` filters by name (a car is not drawn for ['person'])."""
    image = _blank()
    Annotator(AnnotationConfig(enabled=False), NAMES).draw(image, [_box(0), _box(2)], "cam 10 fps")
    assert not image.any()

    only_people = Annotator(AnnotationConfig(classes=["person"], overlay=False), NAMES)
    only_people.draw(image, [_box(2)])
    assert not image.any()
    only_people.draw(image, [_box(0)])
    assert tuple(int(v) for v in image[100, 40]) == PALETTE[0]


def test_annotator_labels_and_overlay_follow_their_switches() -> None:
    """Labels sit above the box (below its top when there is no room); the overlay only when on and given."""
    labelled = _blank()
    Annotator(AnnotationConfig(overlay=False), NAMES).draw(labelled, [_box(0)], "cam 10 fps")
    assert labelled[30:60, 40:120].any()  # the label above the box
    assert not labelled[0:20, 0:20].any()  # no overlay

    at_top = _blank()
    Annotator(AnnotationConfig(overlay=False), NAMES).draw(at_top, [_box(0, y1=0)])
    label_row = at_top[8, 45:100]
    assert (label_row == PALETTE[0]).all(axis=1).any()  # the label's background, inside the frame

    overlaid = _blank()
    annotator = Annotator(AnnotationConfig(), NAMES)
    annotator.draw(overlaid, [], None)
    assert not overlaid.any()
    annotator.draw(overlaid, [], "cam 10 fps 80 ms")
    assert overlaid[0:20, 0:60].any() and not overlaid[60:, :].any()
