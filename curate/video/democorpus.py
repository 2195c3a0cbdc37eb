"""A deterministic demo corpus with known truth, made locally (no downloads).

Each video is drawn from seeded procedural content and encoded with PyAV's own FFmpeg. The corpus covers hard
cuts at known frames, a fade, static and moving content, a camera pan, a logo overlay, a near-black clip, a clip
shorter than the default minimum length, and several resolutions, frame rates, codecs and containers.
`truth.json` beside the videos lists, per file, its frame count, rate, size, scene starts and the features it
carries. Same code, same bytes: nothing depends on the clock or on global random state.

    python -m curate.video.democorpus OUT_DIR      (or: curate demo-corpus OUT_DIR)
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

TRUTH_FILE = "truth.json"


@dataclass
class DemoVideo:
    """One generated file and its ground truth."""

    file: str
    codec: str
    width: int
    height: int
    fps: int
    num_frames: int
    scene_starts: list[int]
    scene_kinds: list[str]  # moving | static | pan | fade | dark
    # Inclusive-exclusive frame ranges with a gradual change that is NOT a cut.
    fades: list[list[int]] = field(default_factory=list)
    pans: list[list[int]] = field(default_factory=list)
    logo: bool = False
    near_black: bool = False
    static: bool = False


# (file, codec, w, h, fps, scenes) where each scene is (kind, frames); kinds are drawn by `scene_frames`.
CORPUS = [
    ("cuts_h264.mp4", "libx264", 640, 360, 25, [("moving", 40), ("moving", 50), ("static", 60)]),
    ("pan_logo_h264.mp4", "libx264", 1280, 720, 30, [("pan", 90)], {"logo": True}),
    ("fade_vp9.webm", "libvpx-vp9", 320, 240, 24, [("fade", 96)]),
    ("static_logo_mpeg4.mov", "mpeg4", 480, 360, 24, [("static", 36), ("moving", 42)], {"logo": True}),
    ("dark_h264.mkv", "libx264", 320, 180, 25, [("dark", 75)]),
    ("fast_cuts_60fps.mkv", "libx264", 426, 240, 60, [("moving", 70), ("pan", 80), ("moving", 60)]),
    ("short_mpeg4.avi", "mpeg4", 160, 120, 15, [("moving", 10)]),
]


def procedural_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colourful field with blobs and fine grain: enough structure for detectors and encoders."""
    base = rng.uniform(30, 225, size=(3,))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.28)
        img[..., c] = base[c] + 60 * np.sin(2 * np.pi * (fx * xs / w + fy * ys / h) + ph)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.15) * min(h, w)
        color = rng.uniform(0, 255, size=3)
        cv2.circle(img, (int(cx), int(cy)), int(r), color.tolist(), -1)
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def scene_frames(kind: str, n: int, w: int, h: int, rng: np.random.Generator) -> list[np.ndarray]:
    if kind == "pan":
        # A window sliding at constant speed across a wide picture: camera pan, no cut.
        wide = procedural_texture(rng, h, w * 2)
        step = w / max(n - 1, 1)
        return [np.ascontiguousarray(wide[:, int(i * step):int(i * step) + w]) for i in range(n)]
    if kind == "dark":
        return [np.clip(rng.normal(6, 2, size=(h, w, 3)), 0, 255).astype(np.uint8) for _ in range(n)]
    bg = procedural_texture(rng, h, w)
    if kind == "static":
        return [bg.copy() for _ in range(n)]
    if kind == "fade":
        # Hold, fade to black over a second, fade back in: a gradual change that must not be called a cut.
        hold, ramp = n // 4, n // 4
        frames = []
        for i in range(n):
            if i < hold or i >= hold + 2 * ramp:
                a = 1.0
            elif i < hold + ramp:
                a = 1.0 - (i - hold + 1) / ramp
            else:
                a = (i - hold - ramp + 1) / ramp
            frames.append((bg.astype(np.float32) * a).astype(np.uint8))
        return frames
    # "moving": objects crossing a fixed background.
    objs = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-4, 4) * w / 320, rng.uniform(-3, 3) * h / 240,
             int(rng.uniform(0.05, 0.12) * min(w, h)), rng.uniform(0, 255, size=3).tolist()) for _ in range(4)]
    frames = []
    for i in range(n):
        f = bg.copy()
        for x, y, vx, vy, r, color in objs:
            cv2.rectangle(f, (int(x + vx * i) - r, int(y + vy * i) - r), (int(x + vx * i) + r, int(y + vy * i) + r),
                          color, -1)
        frames.append(f)
    return frames


def _add_logo(frame: np.ndarray) -> np.ndarray:
    """A semi-transparent channel bug in the top-right corner, fixed for the whole video."""
    h, w = frame.shape[:2]
    overlay = frame.copy()
    x0, y0 = int(w * 0.78), int(h * 0.05)
    cv2.rectangle(overlay, (x0, y0), (int(w * 0.96), int(h * 0.16)), (255, 255, 255), 2)
    cv2.putText(overlay, "DEMO", (x0 + 4, int(h * 0.14)), cv2.FONT_HERSHEY_SIMPLEX, h / 500, (255, 255, 255), 2)
    return cv2.addWeighted(overlay, 0.6, frame, 0.4, 0)


def encode_frames(path: Path, frames: list[np.ndarray], *, codec: str, fps: int | Fraction,
                  pts: list[int] | None = None, time_base: Fraction | None = None, rotation: int = 0,
                  options: dict[str, str] | None = None, container_options: dict[str, str] | None = None) -> None:
    """Writes RGB frames with PyAV. `pts` (in `time_base` units) gives variable frame rate when set."""
    h, w = frames[0].shape[:2]
    # bitexact: no random segment ids or dates in Matroska/WebM headers, so the same call gives the same bytes.
    copts = {"fflags": "+bitexact", **(container_options or {})}
    with av.open(str(path), "w", container_options=copts) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        opts = {"threads": "1"}  # one thread: identical bytes on every machine
        if codec == "libx264":
            opts.update(preset="veryfast", crf="18")
        elif codec == "libvpx-vp9":
            opts.update(deadline="realtime", **{"cpu-used": "8"})
        stream.options = {**opts, **(options or {})}
        if codec == "mpeg4":
            stream.bit_rate = 2_000_000
        if time_base is not None:  # the encoder must count in the same unit, or it regularises the pts
            stream.time_base = stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_demo_corpus(out_dir: str | Path) -> list[DemoVideo]:
    """Writes the corpus and `truth.json` into `out_dir` (created if needed) and returns the truth."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = []
    for seed, entry in enumerate(CORPUS):
        file, codec, w, h, fps, scenes = entry[:6]
        extra = entry[6] if len(entry) > 6 else {}
        rng = np.random.default_rng(1000 + seed)
        frames: list[np.ndarray] = []
        starts, fades, pans = [], [], []
        for kind, n in scenes:
            starts.append(len(frames))
            if kind == "fade":
                fades.append([len(frames) + n // 4, len(frames) + 3 * n // 4])
            if kind == "pan":
                pans.append([len(frames), len(frames) + n])
            frames.extend(scene_frames(kind, n, w, h, rng))
        if extra.get("logo"):
            frames = [_add_logo(f) for f in frames]
        encode_frames(out / file, [f[..., ::-1] for f in frames], codec=codec, fps=fps)
        truth.append(DemoVideo(
            file=file, codec=codec, width=w, height=h, fps=fps, num_frames=len(frames), scene_starts=starts,
            scene_kinds=[k for k, _ in scenes],
            fades=fades, pans=pans, logo=bool(extra.get("logo")), near_black=all(k == "dark" for k, _ in scenes),
            static=all(k == "static" for k, _ in scenes),
        ))
    (out / TRUTH_FILE).write_text(json.dumps([asdict(t) for t in truth], indent=2) + "\n")
    return truth


def load_truth(corpus_dir: str | Path) -> list[DemoVideo]:
    return [DemoVideo(**d) for d in json.loads((Path(corpus_dir) / TRUTH_FILE).read_text())]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m curate.video.democorpus OUT_DIR", file=sys.stderr)
        return 2
    for t in make_demo_corpus(args[0]):
        print(f"{t.file}: {t.width}x{t.height} {t.fps} fps, {t.num_frames} frames, scenes at {t.scene_starts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
