"""The cut-detector interface: frames go in one at a time, during the single analysis pass; cuts come out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class CutDetector(ABC):
    """Finds hard cuts in a stream of frames fed in presentation order.

    Detectors never open the video: the analysis pass decodes once and pushes each frame, downscaled to the
    detector's `input_size`, so detection shares the decode with every other sampler.
    """

    #: Name recorded with the results.
    name: str = ""

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) frames should be pushed at, given the displayed source size."""
        return width, height

    @abstractmethod
    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        """Feeds frame `index` (0, 1, 2, ... with no gaps) as a uint8 BGR array."""

    @abstractmethod
    def finish(self) -> list[int]:
        """Ends the stream and returns the sorted indices of frames that start a new scene (never 0)."""


def scaled_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """Keeps the aspect ratio; even sizes, since the YUV 4:2:0 conversions need them."""
    if width <= target_width:
        return width - width % 2 or 2, height - height % 2 or 2
    h = max(2, int(round(height * target_width / width / 2)) * 2)
    return target_width - target_width % 2, h
