"""Reposts of a real video, as platforms and re-uploaders make them: the positives of the duplicate tests.

Each variant decodes the original with PyAV, changes every frame the same way and encodes it again with libx264
(a burned-in watermark goes through tests/burnin.py); a remux copies the packets into another container, so its
decoded frames are the original's. Used by tests/test_dedup.py and bench/dedup_bench.py.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

KINDS = ("crf", "scale", "crop", "letterbox", "watermark", "remux")


def _changed(img: np.ndarray, kind: str) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    if kind == "scale":  # three quarters the size
        img = cv2.resize(img, (w * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)
    elif kind == "crop":  # 5% off, split between the sides
        dy, dx = int(h * 0.05) // 2, int(w * 0.05) // 2
        img = img[dy:h - dy, dx:w - dx]
    elif kind == "letterbox":  # black bars an eighth of the height, above and below
        bar = np.zeros((h // 8, w, 3), np.uint8)
        img = np.concatenate([bar, img, bar])
    return np.ascontiguousarray(img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2])


def reencode(src: Path, dst: Path, kind: str) -> Path:
    """`src` changed by `kind` (crf: the same frames at CRF 32; scale, crop, letterbox: at CRF 20)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        rate = stream.average_rate or Fraction(25)
        enc = None
        for i, frame in enumerate(inp.decode(stream)):
            img = _changed(frame.to_ndarray(format="rgb24"), kind)
            if enc is None:
                enc = out.add_stream("libx264", rate=rate)
                enc.width, enc.height, enc.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
                enc.options = {"crf": "32" if kind == "crf" else "20", "preset": "veryfast", "x264-params": "mbtree=0"}
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, 1 / rate
            for packet in enc.encode(vf):
                out.mux(packet)
        for packet in enc.encode():
            out.mux(packet)
    return dst


def remux(src: Path, dst: Path) -> Path:
    """The packets of `src`'s video stream copied into `dst`'s container (another file, the same frames)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    return dst


def make_variants(src: Path, out_dir: Path, kinds=KINDS) -> dict[str, Path]:
    """kind -> file, each variant of `src` made once into `out_dir`."""
    from burnin import Overlay, burn

    out_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    for kind in kinds:
        dst = out_dir / f"{src.stem}__{kind}.{'mkv' if kind == 'remux' else 'mp4'}"
        if not dst.exists():
            if kind == "remux":
                remux(src, dst)
            elif kind == "watermark":
                burn(src, dst, Overlay("handle", "br", 0.07, 0.8, "@lena.films"), max_s=1e9)
            else:
                reencode(src, dst, kind)
        made[kind] = dst
    return made
