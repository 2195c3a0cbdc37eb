"""Technical quality from a clip's sampled frames, weight-free: sharpness, exposure, blank and frozen frames,
letterbox/pillarbox bars.

All measures are taken on the samples of the analysis pass (upright, at most `samples.max_side` px), so they are
comparable across sources of any resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

DARK, BRIGHT = 16, 239  # luma levels counted as crushed black / blown white
BLANK_STD = 4.0  # a frame whose luma varies less than this is blank (uniform)
FROZEN_DIFF = 0.5  # mean absolute luma change between samples below which nothing moved at all
BAR_LUMA = 24  # a letterbox bar row/column is at most this bright in every sample...
BAR_MIN_FRACTION = 0.02  # ...and bars thinner than this share of the frame are ignored


def quality_scores(frames: list[np.ndarray]) -> dict:
    """Scores for a clip from its BGR uint8 samples.

    Returns:
        sharpness: mean variance of the Laplacian of luma (higher is sharper; 0 for no frames).
        dark_fraction, bright_fraction: mean share of pixels at crushed black / blown white.
        blank_fraction: share of samples that are near-uniform.
        frozen_fraction: share of consecutive sample pairs with no change at all.
        content_box: [x0, y0, x1, y1] of the picture inside letterbox/pillarbox bars, as fractions of the frame.
    """
    if not frames:
        return {"sharpness": None, "dark_fraction": None, "bright_fraction": None, "blank_fraction": None,
                "frozen_fraction": None, "content_box": None}
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    n = grays[0].size
    # OpenCV's reductions: several times faster than numpy's on these small frames.
    sharp = [cv2.meanStdDev(cv2.Laplacian(g, cv2.CV_32F))[1][0, 0] ** 2 for g in grays]
    diffs = [cv2.norm(a, b, cv2.NORM_L1) / n for a, b in zip(grays, grays[1:])]
    return {
        "sharpness": float(np.mean(sharp)),
        "dark_fraction": float(np.mean([np.count_nonzero(g < DARK) / n for g in grays])),
        "bright_fraction": float(np.mean([np.count_nonzero(g > BRIGHT) / n for g in grays])),
        "blank_fraction": float(np.mean([cv2.meanStdDev(g)[1][0, 0] < BLANK_STD for g in grays])),
        "frozen_fraction": float(np.mean([d < FROZEN_DIFF for d in diffs])) if diffs else 0.0,
        "content_box": content_box(grays),
    }


def content_box(grays: list[np.ndarray]) -> list[float]:
    """The region inside black bars that stay dark in every sample, as [x0, y0, x1, y1] fractions."""
    brightest = np.max(np.stack(grays), axis=0)
    h, w = brightest.shape
    dark_rows = brightest.max(axis=1) <= BAR_LUMA
    dark_cols = brightest.max(axis=0) <= BAR_LUMA
    top, bottom = _run(dark_rows), _run(dark_rows[::-1])
    left, right = _run(dark_cols), _run(dark_cols[::-1])
    if top + bottom >= h or left + right >= w:  # all dark: a black frame, not bars
        return [0.0, 0.0, 1.0, 1.0]
    top, bottom = (t if t >= BAR_MIN_FRACTION * h else 0 for t in (top, bottom))
    left, right = (t if t >= BAR_MIN_FRACTION * w else 0 for t in (left, right))
    return [left / w, top / h, (w - right) / w, (h - bottom) / h]


def crop_to_box(image: np.ndarray, box) -> np.ndarray:
    """The part of `image` inside `box` ([x0, y0, x1, y1] fractions, as `content_box` gives): the picture
    without its bars. The whole image when `box` is None or leaves less than 8 pixels a side."""
    if not box:
        return image
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v * size)) for v, size in zip(box, (w, h, w, h)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return image
    return image[y0:y1, x0:x1]


def _run(flags: np.ndarray) -> int:
    """Length of the run of True at the start."""
    idx = np.flatnonzero(~flags)
    return int(idx[0]) if len(idx) else len(flags)
