"""Synthetic camera motion over a procedural texture, with known truth, for the motion and overlay scorers."""

from __future__ import annotations

import cv2
import numpy as np

from curate.democorpus import procedural_texture

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


def getty_mask(testdata) -> np.ndarray:
    """The strokes of the real 'gettyimages' watermark in testdata/watermark/watermark_example.png (0..1)."""
    img = cv2.imread(str(testdata / "watermark" / "watermark_example.png"))
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.int16)
    crop = gray[150:195, 120:230]  # the text band, in the 256x256 original
    strokes = (crop - cv2.medianBlur(crop.astype(np.uint8), 9)) > 18
    return strokes.astype(np.float32)


def moving_content(kind: str, n: int, seed: int) -> list[np.ndarray]:
    """Content under an overlay: camera motion, or objects moving over a fixed background."""
    if kind != "objects":
        return camera(kind, 0.03 if kind.startswith("zoom") else 5, n=n, seed=seed)
    rng = np.random.default_rng(seed)
    bg = procedural_texture(rng, H, W)
    objs = [(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(-12, 12), rng.uniform(-8, 8),
             int(rng.uniform(15, 35)), rng.uniform(0, 255, 3).tolist()) for _ in range(6)]
    frames = []
    for i in range(n):
        f = bg.copy()
        for x, y, vx, vy, r, col in objs:
            cv2.circle(f, (int(x + vx * i) % W, int(y + vy * i) % H), r, col, -1)
        frames.append(f)
    return frames


def add_overlay(frames: list[np.ndarray], kind: str, rng: np.random.Generator, getty: np.ndarray,
                where: str | None = None) -> None:
    """Burns one fixed overlay into every frame: text, a logo, or the real getty watermark; random place/size."""
    alpha = rng.uniform(0.4, 0.8)
    layer = np.zeros((H, W), np.uint8)
    color = (255, 255, 255) if rng.random() < 0.7 else (20, 20, 20)
    corner = where or rng.choice(["tl", "tr", "bl", "br", "bottom", "centre"])
    if kind == "text":
        scale = rng.uniform(0.4, 0.9)
        text = str(rng.choice(["NEWS 24", "@channel", "SAMPLE", "(c) studio", "LIVE"]))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        x, y = _place(corner, tw, th, rng)
        cv2.putText(layer, text, (x, y + th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2)
    elif kind == "logo":
        s = int(rng.uniform(18, 40))
        x, y = _place(corner, s, s, rng)
        cv2.rectangle(layer, (x, y), (x + s, y + s), 255, 2)
        cv2.circle(layer, (x + s // 2, y + s // 2), s // 3, 255, 2)
    else:
        scale = rng.uniform(0.8, 1.6)
        m = (cv2.resize(getty, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) * 255).astype(np.uint8)
        mh, mw = m.shape
        x, y = _place(corner, mw, mh, rng)
        layer[y:y + mh, x:x + mw] = np.maximum(layer[y:y + mh, x:x + mw], m[: H - y, : W - x])
    a = (layer.astype(np.float32) / 255 * alpha)[..., None]
    for i, f in enumerate(frames):
        frames[i] = (f * (1 - a) + np.array(color, np.float32) * a).astype(np.uint8)


def _place(where: str, w: int, h: int, rng: np.random.Generator) -> tuple[int, int]:
    m = int(rng.uniform(4, 14))
    x = {"tl": m, "bl": m, "tr": W - w - m, "br": W - w - m}.get(where, (W - w) // 2)
    y = {"tl": m, "tr": m, "bl": H - h - m, "br": H - h - m, "bottom": H - h - m}.get(where, (H - h) // 2)
    return max(0, x), max(0, y)


def striped(kind: str, n: int, seed: int) -> list[np.ndarray]:
    """Hard negative: a moving shot of strongly structured content (a grid of bars) with no overlay."""
    rng = np.random.default_rng(seed)
    big = procedural_texture(rng, H * 3, W * 3)
    big[::24] = 0
    big[:, ::24] = 0
    cy, cx = H * 3 // 2, W * 3 // 2
    frames = []
    for i in range(n):
        dx = 5 * i if kind == "pan" else 0
        frames.append(np.ascontiguousarray(big[cy - H // 2:cy + H // 2, cx - W // 2 + dx:cx + W // 2 + dx]))
    return frames


def overlay_dataset(testdata, n_each: int = 8, n_frames: int = 10, seed: int = 42):
    """(frames, label) pairs: overlays over moving content vs. clean moving, static and structured shots."""
    getty = getty_mask(testdata)
    rng = np.random.default_rng(seed)
    items = []
    contents = ["objects", "pan_right", "tilt_up", "zoom_in", "pan_left"]
    for i in range(n_each * 3):
        frames = moving_content(contents[i % len(contents)], n_frames, seed=seed * 1000 + 100 + i)
        add_overlay(frames, ["text", "logo", "getty"][i % 3], rng, getty)
        items.append((frames, 1))
    for i in range(n_each):
        items.append((moving_content(contents[i % len(contents)], n_frames, seed=seed * 1000 + 200 + i), 0))
        items.append((camera("static", 0, n=n_frames, seed=seed * 1000 + 300 + i), 0))  # nothing moves
        items.append((striped("pan" if i % 2 else "static", n_frames, seed=seed * 1000 + 400 + i), 0))
    return items
