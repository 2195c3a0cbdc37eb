"""Frames for captioning, taken from the analysis pass's samples (no second decode of the source).

The model's frame budget is `caption.frames` per request. A clip gets `frames` samples spread uniformly over it,
or, with `frame_rate`, one sample every 1/rate s. A clip too long for the budget at that rate is either
subsampled uniformly (`long_clips: sample`: one request, sparser in time) or cut into consecutive windows of at
most `frames` frames at the rate (`long_clips: windows`: one request each, merged afterwards; see
captioner/windows.py). Which it was is recorded with the caption (`caption_sampling`).
"""

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


def plan_windows(times: list[float], *, frames: int, rate: float | None, long_clips: str = "sample",
                 ) -> tuple[list[list[int]], dict]:
    """The sample indices of each request (one list per window) and the record of how they were chosen:
    `{"mode": uniform | rate | subsampled | windows, "frames": n, "windows": k}`."""
    if not times:
        return [], {"mode": "none", "frames": 0, "windows": 0}
    if rate and long_clips == "windows":
        at_rate = pick_sample_indices(times, frames=len(times), rate=rate)
        windows = [at_rate[i:i + frames] for i in range(0, len(at_rate), frames)]
        mode = "windows" if len(windows) > 1 else "rate"
    else:
        windows = [pick_sample_indices(times, frames=frames, rate=rate)]
        at_rate = pick_sample_indices(times, frames=len(times), rate=rate) if rate else None
        mode = "uniform" if not rate else ("subsampled" if len(at_rate) > frames else "rate")
    return windows, {"mode": mode, "frames": sum(map(len, windows)), "windows": len(windows)}


def clip_frames(samples: list[bytes], times: list[float], *, frames: int, rate: float | None, max_pixels: int,
                sample_fps: float, long_clips: str = "sample") -> tuple[np.ndarray, list[int], float, dict]:
    """The clip's caption frames as one RGB uint8 array (T, H, W, 3), every window's frames in order; how many
    frames each window has; their frame rate; and the sampling record (see `plan_windows`)."""
    import cv2

    windows, sampling = plan_windows(times, frames=frames, rate=rate, long_clips=long_clips)
    if not windows:
        raise ValueError("the clip has no samples to caption from")
    out = [fit_pixels(_decode_rgb(samples[i]), max_pixels) for w in windows for i in w]
    h, w = out[0].shape[:2]
    out = [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in out]
    fps = effective_fps(times, [i for w in windows for i in w], sample_fps)
    sampling = {**sampling, "fps": round(fps, 3)}
    if len(windows) > 1:  # from the first frame of each window to the first of the next (the last: its own last)
        starts = [times[w[0]] for w in windows]
        ends = [*starts[1:], times[windows[-1][-1]]]
        sampling["spans_s"] = [[round(a, 3), round(b, 3)] for a, b in zip(starts, ends)]
    return np.stack(out), [len(w) for w in windows], fps, sampling


def _decode_rgb(jpeg: bytes) -> np.ndarray:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("a stored sample is not a readable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
