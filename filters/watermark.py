"""Persistent overlays (logos, watermarks, burned-in captions, channel bugs) from a clip's sampled frames.

An overlay is a region whose edges stay put while the picture under and around it changes. Per pixel: how often
an edge is there across samples (persistence), and how much the pixels right there change over time (a
semi-transparent overlay lets the content show through; an opaque one changes at its border). Static
backgrounds have persistent edges but no change; moving content has change but no persistent edges; only
overlays have both. One more test tells overlays from structure that moves along itself (a horizon under a
pan, the rails under a tracking shot): such edges persist in one orientation only, while text and logos have
persistent edges both across and along. Cells in the corners and the bottom band, where overlays live, weigh
more.

Known weakness: a static, edge-rich shot that fades (the demo's fade_vp9.webm) can score high, because the
encoder's artefacts change with brightness right at the persistent edges; normalising each frame's brightness
and dropping near-uniform frames removes most, not all, of it.

`OverlayDetector` is the interface: `__call__(frames) -> {"watermark_prob", "watermark_box"}`; a learned
classifier can stand behind the same call.
"""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 320  # analysed at this width
PERSIST = 0.8  # an edge present in at least this share of samples is persistent
CHANGE = 3.0  # luma standard deviation over time (3x3 neighbourhood) that counts as changing content
CANNY = (60, 140)
MIN_SPREAD = 8.0  # frames whose luma varies less than this are left out (no content to judge)
TYPICAL_SPREAD = 50.0  # luma standard deviation frames are normalised to before measuring change
GRID = 8  # cells per side for the localised density
# Logistic calibration of the weighted cell density into a probability (chosen on the seed-42 generated set;
# the test scores a set generated from another seed).
MIDPOINT, SLOPE = 0.03, 0.01


class OverlayDetector:
    """Heuristic overlay detector over a clip's samples (no weights)."""

    name = "persistent-edges-v1"

    def __call__(self, frames: list[np.ndarray]) -> dict:
        if len(frames) < 3:
            return {"watermark_prob": None, "watermark_box": None}
        evidence = overlay_evidence(frames)
        score, box = _localise(evidence)
        prob = 1.0 / (1.0 + np.exp(-(score - MIDPOINT) / SLOPE))
        return {"watermark_prob": float(prob), "watermark_box": box if prob >= 0.5 else None}


def overlay_evidence(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two maps (H, W) in {0, 1}: persistent edges where the content changes, split by edge orientation
    (gradient mostly horizontal, mostly vertical)."""
    h, w = frames[0].shape[:2]
    size = (WIDTH, max(8, int(round(h * WIDTH / w))))
    # Linear is enough for the mild downscale from the samples' 448 px, and much cheaper than area.
    grays = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), size, interpolation=cv2.INTER_LINEAR)
                      for f in frames])
    # Near-uniform frames (the black middle of a fade, a flash) show neither edges nor content: leave them out.
    grays = grays[[cv2.meanStdDev(g)[1][0, 0] >= MIN_SPREAD for g in grays]]
    if len(grays) < 3:
        empty = np.zeros(grays.shape[1:] if len(grays) else (size[1], size[0]), np.float32)
        return empty, empty
    kernel = np.ones((3, 3), np.uint8)
    across, along = [], []
    for g in grays:
        edges = cv2.Canny(g, *CANNY) > 0
        horizontal_gradient = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) > np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
        across.append(cv2.dilate((edges & horizontal_gradient).astype(np.uint8), kernel) > 0)
        along.append(cv2.dilate((edges & ~horizontal_gradient).astype(np.uint8), kernel) > 0)
    # Change is measured on frames normalised to the same mean and spread, so fades and exposure shifts (the
    # whole picture brightening or darkening) do not count as content moving under a fixed edge.
    g = grays.astype(np.float32)
    mean = g.mean(axis=(1, 2), keepdims=True)
    spread = g.std(axis=(1, 2), keepdims=True)
    normalised = (g - mean) / spread * TYPICAL_SPREAD
    changing = cv2.blur(normalised.std(axis=0), (3, 3)) >= CHANGE
    return tuple(((np.mean(e, axis=0) >= PERSIST) & changing).astype(np.float32) for e in (across, along))


def _position_weights(rows: int, cols: int) -> np.ndarray:
    """Corners 1.5, bottom band 1.3, other border cells 1.0, the centre 0.7."""
    wgt = np.full((rows, cols), 0.7, np.float32)
    wgt[[0, -1], :] = 1.0
    wgt[:, [0, -1]] = 1.0
    wgt[-2:, :] = np.maximum(wgt[-2:, :], 1.3)
    for r in (0, 1, -2, -1):
        for c in (0, 1, -2, -1):
            wgt[r, c] = 1.5
    return wgt


def _windows(evidence: np.ndarray) -> np.ndarray:
    """Mean evidence in 2x2 windows of grid cells (an overlay straddling a cell border is not split in four)."""
    h, w = evidence.shape
    ch, cw = h // GRID, w // GRID
    cells = evidence[:ch * GRID, :cw * GRID].reshape(GRID, ch, GRID, cw).mean(axis=(1, 3))
    return (cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]) / 4


def _localise(maps: tuple[np.ndarray, np.ndarray]) -> tuple[float, list[float] | None]:
    """The best weighted window score (geometric mean of both orientations' densities), and the box of the
    evidence connected to that window (fractions)."""
    evidence = np.maximum(*maps)
    h, w = evidence.shape
    ch, cw = h // GRID, w // GRID
    windows = np.sqrt(_windows(maps[0]) * _windows(maps[1]))
    weights = _position_weights(GRID, GRID)
    wwin = np.minimum.reduce([weights[:-1, :-1], weights[1:, :-1], weights[:-1, 1:], weights[1:, 1:]])
    scored = windows * wwin
    r, c = np.unravel_index(int(np.argmax(scored)), scored.shape)
    score = float(scored[r, c])
    if score <= 0:
        return 0.0, None
    blob = cv2.dilate(evidence, np.ones((7, 7), np.uint8))
    n, labels = cv2.connectedComponents(blob.astype(np.uint8))
    window = labels[r * ch:(r + 2) * ch, c * cw:(c + 2) * cw]
    ids, counts = np.unique(window[window > 0], return_counts=True)
    if not len(ids):
        return score, None
    ys, xs = np.nonzero(labels == ids[np.argmax(counts)])
    return score, [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]
