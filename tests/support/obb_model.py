"""A real-weights oriented-box (OBB) model built offline, for testing the OBB code path without internet.

These machines cannot download `yolov8n-obb.pt`. Ultralytics builds an untrained `yolov8n-obb.yaml`
locally, and its OBB head is the COCO detect head plus an angle branch; so the COCO `yolov8n.pt` weights
load into every layer but that branch, whose last convolution we set to output one constant angle.
With angle 0 the decoded boxes are exactly the detect model's; with angle θ every box is turned by θ
about (nearly) its own centre. What this shows: the OBB path (load, predict, rotated NMS, tracking with
angles, events, drawing) works on real frames. What it does not: any aerial accuracy (no DOTA training).
"""

from __future__ import annotations

import math
from pathlib import Path


def build_obb_model(coco_weights: Path, out: Path, angle: float) -> Path:
    """Write `out` (.pt): yolov8n-obb with the COCO weights and every box turned by `angle` radians.

    `angle` must lie in the head's range [-π/4, 3π/4)."""
    import torch
    from ultralytics import YOLO

    if not -math.pi / 4 < angle < 3 * math.pi / 4:
        raise ValueError(f"angle {angle} outside the OBB head's range (-pi/4, 3pi/4)")
    detect = YOLO(str(coco_weights), task="detect")
    obb = YOLO("yolov8n-obb.yaml", task="obb")  # ultralytics' own config, built locally (nc=80)
    obb.model.fuse()  # the shared checkpoint is BN-fused: match its layer names
    missing, unexpected = obb.model.load_state_dict(detect.model.state_dict(), strict=False)
    assert not unexpected and all(".cv4." in key for key in missing), (missing, unexpected)
    # Head: angle = (sigmoid(logit) - 0.25) * π, so a constant logit gives a constant angle.
    logit = math.log((angle / math.pi + 0.25) / (1 - (angle / math.pi + 0.25)))
    with torch.no_grad():
        for branch in obb.model.model[-1].cv4:
            last = branch[-1]
            last.weight.zero_()
            last.bias.fill_(logit)
    obb.model.names = dict(detect.model.names)
    obb.model.args = {**getattr(detect.model, "args", {}), "task": "obb", "imgsz": 640}
    obb.model.float().eval()
    torch.save({"model": obb.model, "train_args": {"task": "obb"}, "date": None, "version": None}, out)
    return out
