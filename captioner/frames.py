"""Frames for captioning, taken from the analysis pass's samples (no second decode of the source)."""

from __future__ import annotations

import math

import numpy as np


def pick_sample_indices(times: list[float], *, frames: int, rate: float | None = None) -> list[int]:
    """Indices of the samples to caption from: `frames` spread uniformly over the clip, or one every
    1/`rate` seconds (at most `frames`). Always at least one; never a duplicate.
    """
    n = len(times)
    if n == 0:
        return []
    if rate:
        picked, next_t = [], times[0]
        for i, t in enumerate(times):
            if t + 1e-6 >= next_t:
                picked.append(i)
                next_t = t + 1.0 / rate
        if len(picked) > frames:  # too long a clip for the rate: fall back to uniform
            picked = [picked[i] for i in _uniform(len(picked), frames)]
        return picked
    return _uniform(n, frames)


def _uniform(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


def effective_fps(times: list[float], indices: list[int], fallback: float) -> float:
    """Frames per second of the picked frames (what the model's temporal encoding should assume)."""
    if len(indices) < 2:
        return fallback
    span = times[indices[-1]] - times[indices[0]]
    return (len(indices) - 1) / span if span > 0 else fallback


def fit_pixels(frame: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscales an RGB frame to at most `max_pixels` pixels, keeping its aspect ratio."""
    import cv2

    h, w = frame.shape[:2]
    if h * w <= max_pixels:
        return frame
    scale = math.sqrt(max_pixels / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def clip_frames(samples: list[bytes], times: list[float], *, frames: int, rate: float | None, max_pixels: int,
                sample_fps: float) -> tuple[np.ndarray, float]:
    """The clip's caption frames as one RGB uint8 array (T, H, W, 3) and their frame rate."""
    import cv2

    idx = pick_sample_indices(times, frames=frames, rate=rate)
    if not idx:
        raise ValueError("the clip has no samples to caption from")
    out = [fit_pixels(_decode_rgb(samples[i]), max_pixels) for i in idx]
    h, w = out[0].shape[:2]
    out = [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in out]
    return np.stack(out), effective_fps(times, idx, sample_fps)


def _decode_rgb(jpeg: bytes) -> np.ndarray:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("a stored sample is not a readable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
