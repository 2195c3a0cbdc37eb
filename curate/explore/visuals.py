"""Pictures of a curated dataset, for notebooks and `curate report`: score histograms with the policy's
thresholds drawn on them, short animated previews of clips and scenes, and the small HTML pieces that show them.

Plots use matplotlib's object API on the Agg canvas, never pyplot: no GUI, no global figure state, and the same
PNG bytes inline in a notebook and in the report. Previews are animated WebP made with PIL (every current browser
and Jupyter front-end plays them): a kept clip's frames are decoded from its mp4 with PyAV; a dropped scene has
no clip, so its stored keyframes are animated instead.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field

import numpy as np

from filters.policy import RULES, KeepPolicy

# Score columns that some threshold applies to, in the policy's order: what `histograms()` draws by default.
POLICY_SCORES = list(dict.fromkeys(r[0] for r in RULES))
KEPT_COLOR, DROPPED_COLOR, LINE_COLOR = "#2e7d32", "#c62828", "#1a237e"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@dataclass
class Plot:
    """A rendered figure; shows itself inline in Jupyter (PNG). `png` is the image, `data_uri` embeds it."""

    png: bytes
    title: str = ""

    def _repr_png_(self) -> bytes:
        return self.png

    @property
    def data_uri(self) -> str:
        return data_uri(self.png, "image/png")

    def save(self, path) -> None:
        with open(path, "wb") as f:
            f.write(self.png)


def thresholds_on(policy: KeepPolicy, column: str) -> list[tuple[str, float]]:
    """(label, value) of each threshold of `policy` that is on and applies to `column`."""
    return [(f"{field} = {getattr(policy, field):g}", float(getattr(policy, field)))
            for col, _, field, _ in RULES if col == column and getattr(policy, field) is not None]


def _finite(values) -> np.ndarray:
    a = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return a[np.isfinite(a)]


def _draw(ax, kept: np.ndarray, dropped: np.ndarray, column: str, lines: list[tuple[str, float]], bins: int,
          log: bool) -> None:
    from matplotlib.ticker import MaxNLocator

    values = np.concatenate([kept, dropped])
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    span = hi - lo or 1.0
    # A threshold far outside the data would squeeze the histogram into a sliver: it is named, not drawn. A
    # fraction's threshold is drawn whenever it lies in [0, 1], the fraction's own range.
    fraction = 0 <= lo and hi <= 1
    drawn = [(lab, v) for lab, v in lines if (fraction and 0 <= v <= 1) or lo - span <= v <= hi + span]
    if values.size == 0:
        ax.text(0.5, 0.5, "no values (scorer off)", ha="center", va="center", transform=ax.transAxes)
    else:  # bins span the thresholds drawn too, so that bars stay visible next to them
        edges = np.histogram_bin_edges(values, bins=bins, range=(min([lo] + [v for _, v in drawn]),
                                                                 max([hi] + [v for _, v in drawn])))
        ax.hist([kept, dropped], bins=edges, stacked=True, color=[KEPT_COLOR, DROPPED_COLOR],
                label=[f"kept ({kept.size})", f"dropped ({dropped.size})"])
    for (label, value), style in zip(lines, ("--", ":")):
        if (label, value) in drawn:
            ax.axvline(value, color=LINE_COLOR, linestyle=style, linewidth=1.5, label=label)
        else:
            ax.plot([], [], color=LINE_COLOR, linestyle=style, label=f"{label} (off the axis)")
    ax.set_title(column, fontsize=10)
    ax.set_ylabel("scenes", fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    if log:
        ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def histograms_plot(frame, policy: KeepPolicy, columns: list[str], *, bins: int = 20, log: bool = False,
                    ncols: int = 3) -> Plot:
    """Histograms of score `columns` of `frame` (a DataFrame with those and `keep`), kept and dropped scenes
    stacked, the thresholds of `policy` on each drawn as vertical lines; one panel a column."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, len(columns)))
    nrows = math.ceil(len(columns) / ncols)
    width, height = 4.2 * ncols, 2.9 * nrows
    fig = Figure(figsize=(width, height), dpi=96)
    # Fixed margins (inches): constrained layout would cost as much as drawing the figure.
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.15 / width, bottom=0.4 / height, top=1 - 0.3 / height,
                        wspace=0.3, hspace=0.5)
    FigureCanvasAgg(fig)
    keep = frame["keep"].fillna(False).astype(bool).to_numpy()
    for i, column in enumerate(columns):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        values = frame[column].to_numpy(dtype=object)
        _draw(ax, _finite(values[keep]), _finite(values[~keep]), column, thresholds_on(policy, column), bins, log)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Plot(buf.getvalue(), ", ".join(columns))


def _fit(image, max_side: int):
    from curate.video.media import fit_within

    w, h = fit_within(image.width, image.height, max_side)
    return image if (w, h) == image.size else image.resize((w, h))


def animate(images: list, *, duration_ms: int = 250) -> bytes:
    """An animated WebP that loops forever (a still one for a single image)."""
    buf = io.BytesIO()
    images[0].save(buf, format="WEBP", save_all=True, append_images=images[1:], duration=duration_ms, loop=0,
                   quality=70, method=3)
    return buf.getvalue()


# Box colours of `why_boxes`: a watermark/logo, text that stays put (an overlay), other text.
WATERMARK_COLOR, OVERLAY_TEXT_COLOR, TEXT_COLOR = (255, 140, 0), (230, 30, 30), (250, 220, 40)


def why_boxes(row: dict) -> list[tuple[list[float], tuple[int, int, int]]]:
    """The boxes that explain a scene's overlay and text scores, with their colours: the watermark box, and each
    text track, in the overlay colour when it counted as an overlay (its sixth value; rows written before it was
    stored: when it was found in at least half the frames read), scene text such as a sign in the text colour."""
    boxes = [(row["watermark_box"], WATERMARK_COLOR)] if row.get("watermark_box") else []
    for b in row.get("text_boxes") or []:
        overlay = b[5] > 0 if len(b) > 5 else len(b) > 4 and b[4] >= 0.5
        boxes.append((b[:4], OVERLAY_TEXT_COLOR if overlay else TEXT_COLOR))
    return boxes


def _draw_boxes(image, boxes: list[tuple[list[float], tuple[int, int, int]]]):
    """`image` (PIL) with `boxes` ([x0, y0, x1, y1] fractions) outlined."""
    from PIL import ImageDraw

    if not boxes:
        return image
    image = image.copy()
    draw = ImageDraw.Draw(image)
    w, h = image.size
    for (x0, y0, x1, y1), color in boxes:
        draw.rectangle([x0 * w, y0 * h, x1 * w - 1, y1 * h - 1], outline=color, width=max(2, w // 160))
    return image


def keyframes_animation(jpegs: list[bytes], *, max_side: int = 256, duration_ms: int = 600,
                        boxes: list[tuple[list[float], tuple[int, int, int]]] | None = None) -> bytes:
    """A dropped scene's stored keyframes as an animated WebP, with `boxes` (see `why_boxes`) drawn on them."""
    from PIL import Image

    return animate([_draw_boxes(_fit(Image.open(io.BytesIO(j)).convert("RGB"), max_side), boxes or [])
                    for j in jpegs], duration_ms=duration_ms)


def keyframe_still(jpeg: bytes, boxes: list[tuple[list[float], tuple[int, int, int]]]) -> bytes:
    """A keyframe JPEG with `boxes` drawn on it (the JPEG itself when there are none)."""
    from PIL import Image

    if not boxes:
        return jpeg
    buf = io.BytesIO()
    _draw_boxes(Image.open(io.BytesIO(jpeg)).convert("RGB"), boxes).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def clip_animation(mp4: bytes, *, frames: int = 8, max_side: int = 256) -> bytes:
    """`frames` evenly spaced frames of a clip, decoded from its mp4 with PyAV, as an animated WebP playing at
    about the clip's own pace (within 100 to 500 ms a frame)."""
    import av

    from curate.video.media import fit_within

    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or 25)
        total = stream.frames  # 0 when the container does not say: estimate from the duration
        if not total:
            total = max(1, int(float(stream.duration * stream.time_base) * rate)) if stream.duration else 1
        wanted = sorted({int(round(x)) for x in np.linspace(0, total - 1, min(frames, total))})
        images, size = [], None
        for i, frame in enumerate(container.decode(stream)):
            size = size or fit_within(frame.width, frame.height, max_side)
            if i in wanted:
                images.append(frame.to_image(width=size[0], height=size[1]))
            if i >= wanted[-1]:
                break
    if not images:
        raise ValueError("the clip has no decodable frames")
    return animate(images, duration_ms=int(min(500, max(100, total / rate * 1000 / len(images)))))


@dataclass
class Tile:
    """One picture of a grid: image bytes, their type, and a label (plain text, escaped when shown)."""

    image: bytes | None
    mime: str
    label: str
    detail: str = ""

    def html(self, width: int = 200) -> str:
        img = (f'<img src="{data_uri(self.image, self.mime)}" alt="{html.escape(self.label)}" '
               f'style="width:{width}px;display:block"/>' if self.image else
               f'<div style="width:{width}px;height:{width * 9 // 16}px;background:#eee">no image</div>')
        return (f'<figure class="tile" style="display:inline-block;margin:4px;width:{width}px;vertical-align:top">'
                f'{img}<figcaption style="font:11px monospace;overflow-wrap:anywhere">{html.escape(self.label)}'
                f'<br>{html.escape(self.detail)}</figcaption></figure>')


def tiles_html(tiles: list[Tile], empty: str = "nothing to show") -> str:
    return "".join(t.html() for t in tiles) or f'<p class="empty">{html.escape(empty)}</p>'


@dataclass
class Preview:
    """Groups of tiles (title, tiles); shows itself inline in Jupyter."""

    groups: list[tuple[str, list[Tile]]]

    @property
    def tiles(self) -> list[Tile]:
        return [t for _, tiles in self.groups for t in tiles]

    def _repr_html_(self) -> str:
        parts = [(f"<h4>{html.escape(title)}</h4>" if title else "")
                 + f"<div>{tiles_html(tiles, 'no scenes match')}</div>" for title, tiles in self.groups]
        return f'<div class="curate-preview">{"".join(parts)}</div>'


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@dataclass
class Captions:
    """Captioned clips with their previews; says so when there are none."""

    rows: list[dict]
    tiles: list[Tile | None]
    statuses: dict[str, int]  # caption_status -> clips
    errors: dict[str, int] = field(default_factory=dict)  # the most common reasons captions failed -> clips

    def _repr_html_(self) -> str:
        status = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "no clips"
        why = "".join(f"<li>{html.escape(e)}: {n}</li>" for e, n in self.errors.items())
        why = f"<p>why captions failed:</p><ul>{why}</ul>" if why else ""
        if not self.rows:
            return f'<div class="curate-captions"><p class="empty">no captions ({html.escape(status)})</p>{why}</div>'
        trs = []
        for r, tile in zip(self.rows, self.tiles):
            meta = " · ".join(str(r[k]) for k in ("caption_status", "caption_model", "prompt_id") if r[k])
            if r.get("caption_clip_score") is not None:
                meta += f" · caption-clip score {r['caption_clip_score']:.3f}"
            structured = (f"<details><summary>structured</summary><pre>{html.escape(_pretty(r['caption_json']))}</pre>"
                          f"</details>" if r["caption_json"] else "")
            if r.get("rewrite_dense"):
                structured += (f"<details><summary>rewrite ({html.escape(r.get('rewrite_model') or '')})</summary>"
                               f"<b>{html.escape(r.get('rewrite_short') or '')}</b>"
                               f"<p>{html.escape(r['rewrite_dense'])}</p></details>")
            trs.append(f"<tr><td>{tile.html(160) if tile else ''}</td>"
                       f"<td><b>{html.escape(r['caption_short'] or '')}</b><p>{html.escape(r['caption'])}</p>"
                       f"<small>{html.escape(meta)}</small>{structured}</td></tr>")
        return f'<div class="curate-captions"><p>{html.escape(status)}</p>{why}<table>{"".join(trs)}</table></div>'
