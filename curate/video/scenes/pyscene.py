"""PySceneDetect's content and adaptive detectors, fed through their detector API with our own frames."""

from __future__ import annotations

import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detectors import AdaptiveDetector, ContentDetector

from curate.config import ScenesConfig
from curate.video.scenes.base import CutDetector, scaled_size


class PySceneDetectCuts(CutDetector):
    """`AdaptiveDetector` (default: a rolling ratio that tolerates camera motion) or `ContentDetector`.

    Args:
        cfg: thresholds and the detection width.
        fps: the stream's average rate; only used to build PySceneDetect's timecodes (we count frames).
    """

    def __init__(self, cfg: ScenesConfig, fps: float):
        self.name = cfg.detector
        self._fps = fps if fps and fps > 0 else 25.0
        self._width = cfg.detect_width
        if cfg.detector == "adaptive":
            self._detector = AdaptiveDetector(
                adaptive_threshold=cfg.adaptive_threshold,
                min_scene_len=cfg.min_scene_frames,
                window_width=cfg.adaptive_window,
                min_content_val=cfg.adaptive_min_content_val,
            )
        else:
            self._detector = ContentDetector(threshold=cfg.content_threshold, min_scene_len=cfg.min_scene_frames)
        self._cuts: list[int] = []
        self._count = 0

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        return scaled_size(width, height, self._width)

    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        found = self._detector.process_frame(FrameTimecode(index, fps=self._fps), frame_bgr)
        self._cuts.extend(tc.frame_num for tc in found)
        self._count = index + 1

    def finish(self) -> list[int]:
        if self._count:
            found = self._detector.post_process(FrameTimecode(self._count, fps=self._fps))
            self._cuts.extend(tc.frame_num for tc in found)
        return sorted({c for c in self._cuts if 0 < c < self._count})
