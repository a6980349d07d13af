"""Drawing the detections onto the frame that produced them, in place (no copy of the picture)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.config.video import AnnotationConfig
from edge.track.tracker import TrackedBox, obb_corners
from smarteye.wire.messages import VideoBox

# Distinct, legible colours (BGR), picked by class id so a class keeps its colour across streams.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
)  # fmt: skip
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOUR = (255, 255, 255)
OVERLAY_BACKGROUND = (32, 32, 32)


class Annotator:
    """Boxes, labels (class, track id, score) and a status overlay, drawn with OpenCV on the BGR frame."""

    def __init__(self, config: AnnotationConfig, class_names: dict[int, str]) -> None:
        self.config = config
        self.class_names = class_names
        wanted = None if config.classes is None else set(config.classes)
        self._drawn = {cid for cid, name in class_names.items() if wanted is None or name in wanted}

    def draw(self, image: np.ndarray, tracks: Sequence[TrackedBox], overlay: str | None = None) -> None:
        """Draw onto `image` itself: it is this frame's own picture, no longer needed unannotated."""
        if not self.config.enabled:
            return
        width = image.shape[1]
        scale = max(0.4, min(1.2, width / 1280))  # legible on 640 px and on 4K alike
        line = max(1, round(self.config.line_width * max(1.0, width / 1280)))
        for box in tracks:
            if box.class_id not in self._drawn:
                continue
            colour = PALETTE[box.class_id % len(PALETTE)]
            top_left = (int(box.x1), int(box.y1))
            if box.obb is not None:  # oriented box (aerial OBB models): its own outline; the label on its hull
                corners = np.round(obb_corners(box.obb)).astype(np.int32)
                cv2.polylines(image, [corners], True, colour, line, cv2.LINE_AA)
            else:
                cv2.rectangle(image, top_left, (int(box.x2), int(box.y2)), colour, line, cv2.LINE_AA)
            if self.config.labels:
                name = self.class_names.get(box.class_id, str(box.class_id))
                draw_label(image, f"{name} #{box.track_id} {box.score:.2f}", top_left, colour, scale)
        if overlay and self.config.overlay:
            draw_label(image, overlay, (0, 0), OVERLAY_BACKGROUND, scale * 1.1, inside=True)

    def describe(self, tracks: Sequence[TrackedBox]) -> list[VideoBox]:
        """The boxes `draw` would paint, for a page to draw over the unchanged video (H.264 passthrough): same
        classes, colours and labels, so both modes look alike."""
        if not self.config.enabled:
            return []
        boxes = []
        for box in tracks:
            if box.class_id not in self._drawn:
                continue
            blue, green, red = PALETTE[box.class_id % len(PALETTE)]
            name = self.class_names.get(box.class_id, str(box.class_id))
            corners = [(round(x, 1), round(y, 1)) for x, y in obb_corners(box.obb)] if box.obb is not None else None
            boxes.append(
                VideoBox(
                    track_id=box.track_id, class_id=box.class_id, colour=f"#{red:02x}{green:02x}{blue:02x}",
                    label=f"{name} #{box.track_id} {box.score:.2f}" if self.config.labels else "",
                    x1=round(box.x1, 1), y1=round(box.y1, 1), x2=round(box.x2, 1), y2=round(box.y2, 1),
                    corners=corners,
                )
            )  # fmt: skip
        return boxes


def draw_label(
    image: np.ndarray, text: str, anchor: tuple[int, int], background: tuple[int, int, int], scale: float,
    inside: bool = False,
) -> None:  # fmt: skip
    """White text on a filled background, above the anchor (or below it when there is no room / `inside`).
    Shared by the live video's boxes and overlay and by alert snapshots."""
    thickness = max(1, round(scale * 1.6))
    (text_width, text_height), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(2, round(3 * scale))
    x, y = anchor
    box_height = text_height + baseline + 2 * pad
    top = y - box_height if not inside and y - box_height >= 0 else y
    cv2.rectangle(image, (x, top), (x + text_width + 2 * pad, top + box_height), background, cv2.FILLED)
    cv2.putText(image, text, (x + pad, top + pad + text_height), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
