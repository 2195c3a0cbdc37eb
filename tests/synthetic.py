"""Synthetic camera motion over a procedural texture, with known truth, for the motion scorer."""

from __future__ import annotations

import cv2
import numpy as np

from curate.video.democorpus import procedural_texture

W, H = 320, 180


def camera(kind: str, speed: float, n: int = 12, seed: int = 0) -> list[np.ndarray]:
    """BGR frames of a virtual camera: `speed` in pixels per frame (pans/tilts) or scale per frame (zooms)."""
    rng = np.random.default_rng(seed)
    big = procedural_texture(rng, H * 3, W * 3)
    cy, cx = H * 3 // 2, W * 3 // 2
    frames = []
    for i in range(n):
        if kind in ("pan_right", "pan_left", "tilt_up", "tilt_down", "static"):
            dx = {"pan_right": 1, "pan_left": -1}.get(kind, 0) * speed * i
            dy = {"tilt_down": 1, "tilt_up": -1}.get(kind, 0) * speed * i
            x0, y0 = int(round(cx - W / 2 + dx)), int(round(cy - H / 2 + dy))
            frames.append(np.ascontiguousarray(big[y0:y0 + H, x0:x0 + W]))
        else:  # zoom: a window shrinking (in) or growing (out) about the centre, resized to the frame
            s = (1 + speed) ** (i if kind == "zoom_in" else -i)
            hw, hh = W / 2 / s, H / 2 / s
            crop = big[int(cy - hh):int(cy + hh), int(cx - hw):int(cx + hw)]
            frames.append(cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA))
    return frames


def times(n: int, fps: float = 4.0) -> list[float]:
    return [i / fps for i in range(n)]
