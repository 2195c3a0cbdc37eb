"""Crafted problem inputs, each made from real encoders and then damaged the way real files are."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from curate.video.democorpus import encode_frames


def _frames(n: int, w: int = 160, h: int = 96, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = np.roll(base, 2 * i, axis=1)
        f[: h // 4, : w // 4] = (255, 0, 0)  # a red block top-left: shows which way the picture turned
        out.append(f)
    return out


def make_bad_files(d: Path) -> dict[str, Path]:
    """Writes every problem file into `d`; returns name -> path."""
    d.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    files["zero_byte"] = d / "zero_byte.mp4"
    files["zero_byte"].write_bytes(b"")

    files["text"] = d / "text_named.mp4"
    files["text"].write_text("this is not a video\n" * 50)

    ok = d / "_whole.mp4"
    encode_frames(ok, _frames(50), codec="libx264", fps=25)
    data = ok.read_bytes()
    ok.unlink()
    files["truncated"] = d / "truncated.mp4"  # index (moov) at the end is lost: nothing to salvage
    files["truncated"].write_bytes(data[: len(data) * 6 // 10])

    fs = d / "_fs.mp4"
    encode_frames(fs, _frames(50), codec="libx264", fps=25, container_options={"movflags": "+faststart"})
    data = fs.read_bytes()
    fs.unlink()
    files["truncated_faststart"] = d / "truncated_faststart.mp4"  # index first: early frames salvageable
    files["truncated_faststart"].write_bytes(data[: len(data) * 6 // 10])

    files["audio_only"] = d / "audio_only.mp4"
    with av.open(str(files["audio_only"]), "w") as out:
        s = out.add_stream("aac", rate=16000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)

    files["one_frame"] = d / "one_frame.mp4"
    encode_frames(files["one_frame"], _frames(1), codec="libx264", fps=25)

    avi = d / "_codec.avi"
    encode_frames(avi, _frames(20), codec="mpeg4", fps=25)
    files["unsupported_codec"] = d / "unsupported_codec.avi"  # fourcc rewritten to one no decoder knows
    files["unsupported_codec"].write_bytes(avi.read_bytes().replace(b"FMP4", b"QQQQ").replace(b"mp4v", b"QQQQ"))
    avi.unlink()

    mid = d / "_mid.mp4"
    encode_frames(mid, _frames(100), codec="libx264", fps=25, options={"g": "10"},
                  container_options={"movflags": "+faststart"})
    data = bytearray(mid.read_bytes())
    mid.unlink()
    rng = np.random.default_rng(1)
    for start in (len(data) * 4 // 10, len(data) * 6 // 10):
        data[start:start + 3000] = rng.integers(0, 255, size=3000, dtype=np.uint8).tobytes()
    files["corrupt_middle"] = d / "corrupt_middle.mp4"
    files["corrupt_middle"].write_bytes(bytes(data))

    files["rotated"] = d / "rotated.mp4"
    encode_frames(files["rotated"], _frames(30, 160, 96), codec="libx264", fps=25, rotation=90)

    # Variable frame rate: frame durations alternate 20 ms and 60 ms (25 fps on average).
    pts = [0]
    for i in range(59):
        pts.append(pts[-1] + (20 if i % 2 == 0 else 60))
    files["vfr"] = d / "vfr.mkv"
    encode_frames(files["vfr"], _frames(60), codec="libx264", fps=25, pts=pts, time_base=Fraction(1, 1000))

    files["huge"] = d / "huge.mp4"  # over the default 8192x8192 limit
    encode_frames(files["huge"], [np.zeros((8208, 8208, 3), np.uint8)], codec="libx264", fps=1,
                  options={"preset": "ultrafast"})

    files["directory"] = d / "a_directory.mp4"
    files["directory"].mkdir(exist_ok=True)
    files["missing"] = d / "missing.mp4"  # never created
    return files
