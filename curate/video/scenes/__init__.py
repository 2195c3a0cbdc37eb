"""Scene detection: cut detectors behind one small interface (`base.py`), one detector per file, and the spans
made from their cuts (`spans.py`). May import: `curate.config` (ScenesConfig), `curate.video.media`.
"""

from __future__ import annotations

from curate.config import ScenesConfig
from curate.video.scenes.base import CutDetector
from curate.video.scenes.spans import Span, make_spans

__all__ = ["CutDetector", "make_detector", "Span", "make_spans"]


def make_detector(cfg: ScenesConfig, fps: float) -> CutDetector:
    """The detector `cfg.detector` names, configured from `cfg`.

    Raises:
        ValueError: an unknown detector name.
    """
    if cfg.detector in ("adaptive", "content"):
        from curate.video.scenes.pyscene import PySceneDetectCuts

        return PySceneDetectCuts(cfg, fps)
    if cfg.detector == "transnetv2":
        from curate.video.scenes.transnet import TransNetV2Cuts

        return TransNetV2Cuts(cfg)
    raise ValueError(f"unknown scene detector {cfg.detector!r}")
