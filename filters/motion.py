"""Motion from a clip's sampled frames: dense optical flow (OpenCV DIS) at low resolution, its statistics, and
a camera-motion label from a global similarity fit of the flow.

Magnitudes are normalised by the frame diagonal and by the time between samples, so they read as "share of the
frame crossed per second" whatever the source's resolution and the sampling rate.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_WIDTH = 160  # flow is computed on frames this wide
MOVING = 0.02  # a pixel moving faster than this (frame diagonals per second) counts as moving
STATIC = 0.01  # a global camera motion slower than this is "static"
ZOOM_STATIC = 0.02  # |log scale| per second below which there is no zoom
LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "mixed")


def motion_scores(frames: list[np.ndarray], times: list[float], *, paired: bool = False) -> dict:
    """Scores for a clip from its BGR uint8 samples and their times (seconds). With `paired`, the frames are
    pairs of consecutive samples laid end to end ([a0, b0, a1, b1, ...]; the job reads a bounded number of pairs
    spread over a long scene) and flow is measured within each pair only.

    Returns:
        motion: mean flow magnitude (diagonals per second); motion_p95: its 95th percentile;
        moving_fraction: share of pixels moving; camera_motion: one of LABELS; jitter: how much the global
        motion changes direction between samples (0 smooth, ~1 or more shaky). None values without two samples.
    """
    empty = {"motion": None, "motion_p95": None, "moving_fraction": None, "camera_motion": None, "jitter": None}
    if len(frames) < 2:
        return empty
    grays = [_small_gray(f) for f in frames]
    h, w = grays[0].shape
    diag = float(np.hypot(w, h))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    means, p95s, moving, globals_ = [], [], [], []
    step = 2 if paired else 1
    pairs = zip(zip(grays[::step], grays[1::step]), zip(times[::step], times[1::step]))
    for (a, b), (t0, t1) in pairs:
        dt = max(t1 - t0, 1e-3)
        flow = dis.calc(a, b, None)
        mag = np.hypot(flow[..., 0], flow[..., 1]) / diag / dt
        means.append(float(mag.mean()))
        p95s.append(float(np.percentile(mag, 95)))
        moving.append(float((mag > MOVING).mean()))
        globals_.append(_global_motion(flow, w, h, dt))
    g = np.array(globals_)  # (pairs, 3): tx, ty (frame widths/heights per second), log-scale per second
    return {
        "motion": float(np.mean(means)),
        "motion_p95": float(np.mean(p95s)),
        "moving_fraction": float(np.mean(moving)),
        "camera_motion": camera_label(g),
        "jitter": _jitter(g),
    }


def _small_gray(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    size = (FLOW_WIDTH, max(8, int(round(h * FLOW_WIDTH / w))))
    # Grey first: resizing one channel instead of three is most of this function's cost.
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), size, interpolation=cv2.INTER_AREA)


def _global_motion(flow: np.ndarray, w: int, h: int, dt: float) -> tuple[float, float, float]:
    """Similarity transform (translation, scale) that best explains the flow, robust to moving objects."""
    ys, xs = np.mgrid[4:h - 4:8, 4:w - 4:8]
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()]
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
    if m is None:
        return 0.0, 0.0, 0.0
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    # Translation of the frame centre (so a zoom about the centre is not read as a pan).
    cx, cy = w / 2, h / 2
    tx = m[0, 0] * cx + m[0, 1] * cy + m[0, 2] - cx
    ty = m[1, 0] * cx + m[1, 1] * cy + m[1, 2] - cy
    return float(tx / w / dt), float(ty / h / dt), float(np.log(max(scale, 1e-6)) / dt)


def camera_label(g: np.ndarray) -> str:
    """Camera motion from per-pair global motion: content moving left means the camera pans right, etc."""
    tx, ty, zoom = (float(np.median(g[:, i])) for i in range(3))
    trans = np.hypot(tx, ty)
    if trans < STATIC and abs(zoom) < ZOOM_STATIC:
        return "static"
    if abs(zoom) >= ZOOM_STATIC and abs(zoom) > trans:
        label = "zoom_in" if zoom > 0 else "zoom_out"
        signs = np.sign(g[:, 2])
    elif abs(tx) >= abs(ty):
        label = "pan_right" if tx < 0 else "pan_left"
        signs = np.sign(g[:, 0])
    else:
        label = "tilt_up" if ty > 0 else "tilt_down"
        signs = np.sign(g[:, 1])
    # Directions that disagree across the clip, or two components of similar size, are "mixed".
    consistent = (signs == np.sign(np.median(signs))).mean() >= 0.75
    dominant = max(abs(tx), abs(ty), abs(zoom))
    second = sorted([abs(tx), abs(ty), abs(zoom)])[-2]
    return label if consistent and second < 0.6 * dominant else "mixed"


def _jitter(g: np.ndarray) -> float:
    """Mean change of the global translation between consecutive pairs, relative to its mean size."""
    t = g[:, :2]
    if len(t) < 2:
        return 0.0
    change = np.linalg.norm(np.diff(t, axis=0), axis=1).mean()
    return float(change / (np.linalg.norm(t, axis=1).mean() + STATIC))
