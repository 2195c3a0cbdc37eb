"""Burned-in overlays on real footage: the positives of the overlay and text evaluation.

Each positive is a real video from `../shared/testdata/real`, decoded with PyAV, with one overlay drawn onto
every frame (PIL, a real TrueType font) and re-encoded as H.264: so the positives and the negatives (the same
videos untouched) are both real footage, and the overlay went through a real encoder as it would on a platform.

Kinds, as they appear in the wild:
    handle     "@name" text watermark in a corner, white with a dark outline, semi-transparent or not
    channel    a channel name in a corner on a translucent dark plate
    logo       a semi-transparent emblem (ring + play triangle) with a word mark beside it
    emblem     the same emblem with no text at all (only the overlay heuristic can see it)
    bug        a small opaque corner bug: a coloured rounded plate with two or three letters
    ticker     a bottom band with scrolling text (news ticker)
    subtitles  burned-in subtitles, bottom centre, a new line every ~1.5 s
    getty      the real "gettyimages" watermark strokes (testdata/watermark), semi-transparent

Used by tests/test_filters_real.py and bench/filters_bench.py; deterministic for a given seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KINDS = ("handle", "channel", "logo", "emblem", "bug", "ticker", "subtitles", "getty")
CORNERS = ("tl", "tr", "bl", "br")
HANDLES = ("@lena.films", "@travel_with_max", "@dailyclips", "@studio.kai", "@urban_moves")
CHANNELS = ("NEWS 24", "SPORT HD", "KIDS TV", "WORLD LIVE", "MUSIC ONE")
WORDMARKS = ("vidstock", "clipfarm", "motionbox", "reelhub")
BUGS = ("TV5", "K2", "RTX", "N1", "ZDX")
SUBTITLES = ("I told you we would get here.", "Look at the light over there!", "Wait, did you hear that?",
             "We should head back soon.", "That was the best day of the trip.")
TICKER = "BREAKING: markets close higher  +++  weather: rain expected tomorrow  +++  sports: final score 2-1  +++  "


def font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's own files (always installed with the project)."""
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), max(6, size))


@dataclass
class Overlay:
    """One overlay to burn in: its kind, where, how big (share of the frame height) and how opaque."""

    kind: str
    corner: str = "br"
    size: float = 0.06
    opacity: float = 0.8
    text: str = ""
    seed: int = 0

    def label(self) -> str:
        return f"{self.kind}-{self.corner}-{self.size:.3f}-{self.opacity:.2f}"


def random_overlay(kind: str, rng: np.random.Generator) -> Overlay:
    """An overlay of `kind` at a random corner, size and opacity within what each kind looks like in the wild."""
    corner = str(rng.choice(CORNERS))
    size, opacity, text = {
        "handle": (rng.uniform(0.045, 0.08), rng.uniform(0.5, 1.0), str(rng.choice(HANDLES))),
        "channel": (rng.uniform(0.05, 0.08), rng.uniform(0.7, 1.0), str(rng.choice(CHANNELS))),
        "logo": (rng.uniform(0.10, 0.16), rng.uniform(0.4, 0.8), str(rng.choice(WORDMARKS))),
        "emblem": (rng.uniform(0.10, 0.18), rng.uniform(0.4, 0.8), ""),
        "bug": (rng.uniform(0.08, 0.13), rng.uniform(0.8, 1.0), str(rng.choice(BUGS))),
        "ticker": (rng.uniform(0.07, 0.10), 1.0, TICKER),
        "subtitles": (rng.uniform(0.045, 0.065), 1.0, ""),
        "getty": (rng.uniform(0.12, 0.2), rng.uniform(0.4, 0.7), "gettyimages"),
    }[kind]
    if kind in ("ticker", "subtitles"):
        corner = "bottom"
    if kind == "getty" and rng.random() < 0.5:
        corner = "centre"
    return Overlay(kind, corner, float(size), float(opacity), text, int(rng.integers(1 << 30)))


def _anchor(corner: str, w: int, h: int, ow: int, oh: int, margin: int) -> tuple[int, int]:
    x = {"tl": margin, "bl": margin, "tr": w - ow - margin, "br": w - ow - margin}.get(corner, (w - ow) // 2)
    y = {"tl": margin, "tr": margin, "bl": h - oh - margin, "br": h - oh - margin,
         "bottom": h - oh - margin}.get(corner, (h - oh) // 2)
    return max(0, x), max(0, y)


def _outlined_text(draw: ImageDraw.ImageDraw, xy, text: str, fnt, alpha: int, fill=(255, 255, 255)) -> None:
    draw.text(xy, text, font=fnt, fill=(*fill, alpha), stroke_width=max(1, fnt.size // 12),
              stroke_fill=(0, 0, 0, alpha))


def _emblem(draw: ImageDraw.ImageDraw, x: int, y: int, s: int, alpha: int) -> None:
    """A ring with a play triangle inside: a typical emblem with no text."""
    lw = max(2, s // 10)
    draw.ellipse([x, y, x + s, y + s], outline=(255, 255, 255, alpha), width=lw)
    draw.polygon([(x + s * 0.38, y + s * 0.28), (x + s * 0.38, y + s * 0.72), (x + s * 0.74, y + s * 0.5)],
                 fill=(255, 255, 255, alpha))


def overlay_layer(ov: Overlay, w: int, h: int, t: float, getty: np.ndarray | None = None) -> Image.Image:
    """The RGBA layer of `ov` for a w x h frame at time t (seconds): tickers scroll, subtitles change."""
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    alpha = int(round(255 * ov.opacity))
    px = max(8, int(round(ov.size * h)))
    margin = max(3, int(0.03 * min(w, h)))
    if ov.kind in ("handle", "channel"):
        fnt = font(px)
        x0, y0, x1, y1 = draw.textbbox((0, 0), ov.text, font=fnt)
        pad = px // 4 if ov.kind == "channel" else 0
        x, y = _anchor(ov.corner, w, h, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad, margin)
        if ov.kind == "channel":
            draw.rounded_rectangle([x, y, x + x1 - x0 + 2 * pad, y + y1 - y0 + 2 * pad], radius=pad,
                                   fill=(10, 10, 40, int(alpha * 0.6)))
        _outlined_text(draw, (x + pad - x0, y + pad - y0), ov.text, fnt, alpha)
    elif ov.kind in ("logo", "emblem"):
        fnt = font(int(px * 0.45))
        tw = draw.textbbox((0, 0), ov.text, font=fnt)[2] if ov.text else 0
        ow = px + (tw + px // 5 if ov.text else 0)
        x, y = _anchor(ov.corner, w, h, ow, px, margin)
        _emblem(draw, x, y, px, alpha)
        if ov.text:
            tb = draw.textbbox((0, 0), ov.text, font=fnt)
            draw.text((x + px + px // 5, y + (px - (tb[3] - tb[1])) // 2 - tb[1]), ov.text, font=fnt,
                      fill=(255, 255, 255, alpha))
    elif ov.kind == "bug":
        fnt = font(int(px * 0.5))
        tb = draw.textbbox((0, 0), ov.text, font=fnt)
        ow = max(px, tb[2] - tb[0] + px // 2)
        x, y = _anchor(ov.corner, w, h, ow, px, margin)
        draw.rounded_rectangle([x, y, x + ow, y + px], radius=px // 5, fill=(200, 30, 40, alpha))
        draw.text((x + (ow - (tb[2] - tb[0])) // 2 - tb[0], y + (px - (tb[3] - tb[1])) // 2 - tb[1]), ov.text,
                  font=fnt, fill=(255, 255, 255, alpha))
    elif ov.kind == "ticker":
        fnt = font(int(px * 0.6))
        y = h - px - margin
        draw.rectangle([0, y, w, y + px], fill=(15, 15, 60, alpha))
        tb = draw.textbbox((0, 0), ov.text, font=fnt)
        span = tb[2] - tb[0]
        offset = -int(t * 0.25 * w) % span  # scrolls a quarter of the frame width a second
        for k in range(-1, w // max(1, span) + 2):
            draw.text((k * span - offset, y + (px - (tb[3] - tb[1])) // 2 - tb[1]), ov.text, font=fnt,
                      fill=(255, 255, 255, alpha))
    elif ov.kind == "subtitles":
        fnt = font(px, bold=False)
        line = SUBTITLES[(int(t / 1.5) + ov.seed) % len(SUBTITLES)]
        tb = draw.textbbox((0, 0), line, font=fnt)
        while tb[2] - tb[0] > 0.92 * w and fnt.size > 8:  # long lines on narrow frames: a smaller font
            fnt = font(fnt.size - 1, bold=False)
            tb = draw.textbbox((0, 0), line, font=fnt)
        x, y = _anchor("bottom", w, h, tb[2] - tb[0], tb[3] - tb[1], int(0.06 * h))
        _outlined_text(draw, (x - tb[0], y - tb[1]), line, fnt, alpha)
    elif ov.kind == "getty":
        if getty is None:
            raise ValueError("the getty overlay needs the watermark mask")
        scale = ov.size * h / getty.shape[0] * 2.2
        mask = Image.fromarray((getty * 255).astype(np.uint8)).resize(
            (max(1, int(getty.shape[1] * scale)), max(1, int(getty.shape[0] * scale))), Image.BILINEAR)
        x, y = _anchor(ov.corner, w, h, mask.width, mask.height, margin)
        white = Image.new("RGBA", mask.size, (255, 255, 255, 0))
        white.putalpha(mask.point(lambda v: v * alpha // 255))
        layer.alpha_composite(white, (x, y))
    else:
        raise ValueError(f"unknown overlay kind {ov.kind!r}")
    return layer


def overlay_box(ov: Overlay, w: int, h: int, getty: np.ndarray | None = None, seconds: float = 6.0) -> list[float]:
    """Where `ov` is drawn on a w x h frame at any time up to `seconds`: [x0, y0, x1, y1] fractions."""
    drawn = np.zeros((h, w), bool)
    for t in np.arange(0.0, seconds, 0.5):
        drawn |= np.asarray(overlay_layer(ov, w, h, float(t), getty))[..., 3] > 0
    ys, xs = np.nonzero(drawn)
    return [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]


def getty_mask(testdata: Path) -> np.ndarray:
    """The strokes of the real 'gettyimages' watermark in testdata/watermark/watermark_example.png (0..1)."""
    import cv2

    gray = cv2.cvtColor(cv2.imread(str(testdata / "watermark" / "watermark_example.png")), cv2.COLOR_BGR2GRAY)
    crop = gray[150:195, 120:230].astype(np.int16)  # the text band, in the 256x256 original
    return ((crop - cv2.medianBlur(crop.astype(np.uint8), 9)) > 18).astype(np.float32)


def burn(src: Path, dst: Path, ov: Overlay, *, max_s: float = 6.0, getty: np.ndarray | None = None,
         crf: int = 20) -> Path:
    """Decodes `src`, draws `ov` on every frame (at most `max_s` seconds) and writes H.264 mp4 to `dst`."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        rate = stream.average_rate or Fraction(25)
        if rate > 60:
            rate = Fraction(30)
        enc = None
        for i, frame in enumerate(inp.decode(stream)):
            t = i / float(rate)
            if t >= max_s:
                break
            img = frame.to_image().convert("RGBA")
            w, h = img.width // 2 * 2, img.height // 2 * 2
            if enc is None:
                enc = out.add_stream("libx264", rate=rate)
                enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
                # mbtree off: with it, this x264 build's output differs run to run, and a test must see the same frames
                enc.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}
            img = Image.alpha_composite(img.crop((0, 0, w, h)), overlay_layer(ov, w, h, t, getty)).convert("RGB")
            vf = av.VideoFrame.from_image(img)
            vf.pts, vf.time_base = i, 1 / rate
            for packet in enc.encode(vf):
                out.mux(packet)
        if enc is not None:
            for packet in enc.encode():
                out.mux(packet)
    return dst


def clean_videos(testdata: Path) -> dict[str, dict]:
    """The labelled real videos: name -> label (overlay, kind, camera)."""
    labels = json.loads((testdata / "real" / "labels.json").read_text())
    return {k: v for k, v in labels.items() if not k.startswith("_")}


def clean_backgrounds(testdata: Path) -> list[Path]:
    """The clean camera and animation videos of testdata/real (no overlay): the backgrounds of positives."""
    return sorted(testdata / "real" / n for n, lab in clean_videos(testdata).items()
                  if lab["overlay"] is False and lab["kind"] in ("camera", "animation"))


def positives(testdata: Path, out_dir: Path, *, seed: int, per_kind: int | None = None,
              kinds: tuple[str, ...] = KINDS, max_s: float = 6.0,
              backgrounds: list[Path] | None = None) -> list[tuple[Path, Overlay, str]]:
    """Burns overlays into real videos (by default `clean_backgrounds`): (file, overlay, background name) per
    positive. Every background gets every kind once (or `per_kind` backgrounds a kind, chosen by the seed)."""
    rng = np.random.default_rng(seed)
    getty = getty_mask(testdata)
    backgrounds = backgrounds or clean_backgrounds(testdata)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for kind in kinds:
        chosen = backgrounds if per_kind is None else list(rng.choice(backgrounds, per_kind, replace=False))
        for src in chosen:
            ov = random_overlay(kind, rng)
            dst = out_dir / f"{src.stem}__{ov.label()}.mp4"
            if not dst.exists():
                burn(src, dst, ov, max_s=max_s, getty=getty)
            made.append((dst, ov, src.name))
    (out_dir / "positives.json").write_text(json.dumps(
        [{"file": p.name, "background": b, **asdict(o)} for p, o, b in made], indent=1))
    return made


# What the evaluation counts as a drop for an overlay, text or safety reason (filters/policy.py's codes).
OVERLAY_REASONS = frozenset({"watermark", "text", "text_overlay", "nsfw"})


def curate_file(path: Path, cfg) -> list[dict]:
    """The analysis pass, every scorer but the aesthetic one, and the policy on one file: its scene rows."""
    from curate.job.analyze import analyze_source
    from curate.job.stages import ScoreStage
    from curate.video.sources import Source
    from filters.policy import KeepPolicy

    rows = [r for r in analyze_source(Source(str(path)), cfg) if r["clip_id"] is not None]
    return KeepPolicy.from_config(cfg.policy)(ScoreStage(cfg).process(rows))


def overlay_drops(rows: list[dict]) -> set[str]:
    """The overlay, text and safety reasons any scene of a file was dropped for."""
    return {r for row in rows for r in row.get("drop_reasons") or [] if r in OVERLAY_REASONS}


def group_of(name: str, label: dict) -> str:
    """The confusion table's row for a real video: what it is by its label."""
    if label["overlay"] is True:
        return "real overlay throughout"
    if label["overlay"] == "first_frame":
        return "title on frame 0 only"
    return "clean camera/animation" if label["kind"] in ("camera", "animation") else "clean screen/slide"
