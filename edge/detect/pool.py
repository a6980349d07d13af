"""One loaded model per distinct runtime, shared by every stream that runs it.

A source may carry its own `detector:` block (edge/config/source.py), so a drone stream can run an aerial model
while the site cameras run COCO. Loading a model costs memory (and, for exported runtimes, seconds), so streams
whose settings differ only in what is applied per call (thresholds, class filter, slicing) share the loaded
model: each gets its own Detector (its own thresholds, class ids, tile plans) around the same runtime. Streams
with identical settings share one Detector outright.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from edge.config.detector import DetectorConfig
from edge.detect.detector import Detector, resolve_model_path

log = logging.getLogger("edge.detect")

# Settings applied per prediction call (or per stream around it): they do not change the loaded runtime.
PER_CALL_FIELDS = frozenset({"conf", "iou", "classes", "slicing"})


def runtime_key(settings: DetectorConfig) -> str:
    """What identifies a loaded runtime: every setting except the per-call ones, with the model's resolved path
    (so `yolov8n.pt` and the path it resolves to are the same model). A field added to DetectorConfig later
    counts as a runtime setting until listed in PER_CALL_FIELDS: streams then load separately rather than
    wrongly share."""
    fields = settings.model_dump(mode="json", exclude=set(PER_CALL_FIELDS))
    fields["model"] = resolve_model_path(settings.model)
    return json.dumps(fields, sort_keys=True)


def settings_key(settings: DetectorConfig) -> str:
    return json.dumps(settings.model_dump(mode="json"), sort_keys=True)


class DetectorPool:
    """The node's detectors by settings; `get` loads a runtime only for settings not seen before."""

    def __init__(self, load: Callable[[DetectorConfig, Any | None], Detector] = Detector) -> None:
        """`load(settings, model)` builds a Detector, around `model` when it is a runtime already loaded."""
        self._load = load
        self._by_settings: dict[str, Detector] = {}
        self._runtimes: dict[str, Any] = {}

    def add(self, detector: Detector) -> Detector:
        """Register a detector built elsewhere (tests, the CLI's warm one) under its own settings."""
        self._by_settings.setdefault(settings_key(detector.config), detector)
        self._runtimes.setdefault(runtime_key(detector.config), detector.model)
        return detector

    def get(self, settings: DetectorConfig) -> Detector:
        """The detector for these settings: the same one for equal settings, a new one around an already loaded
        runtime when only per-call settings differ, a newly loaded one otherwise. Raises ModelError."""
        key = settings_key(settings)
        found = self._by_settings.get(key)
        if found is not None:
            return found
        runtime = runtime_key(settings)
        shared = self._runtimes.get(runtime)
        detector = self._load(settings, shared)
        if shared is None:
            log.info("detector: loaded %s (imgsz %d)", settings.model, settings.imgsz)
            self._runtimes[runtime] = detector.model
        self._by_settings[key] = detector
        return detector

    @property
    def runtimes(self) -> int:
        """How many models are loaded."""
        return len(self._runtimes)

    @property
    def detectors(self) -> list[Detector]:
        return list(self._by_settings.values())
