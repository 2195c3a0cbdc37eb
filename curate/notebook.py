"""`curate.open`: a curated dataset in a notebook, at any version, read lazily.

    ds = curate.open("out/", version="run-2026...")        # a tag, a clips.lance number, or None (latest)
    ds.candidates(columns=["clip_id", "aesthetic", "keep"], filter="aesthetic >= 5")   # pandas
    ds.table("clips", columns=["clip_id", "duration_s"])   # Arrow
    ds.preview(filter="keep = false", n=12)                # keyframe grid, inline
    ds.funnel()                                            # videos -> scenes -> kept -> clips -> captioned
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import pyarrow as pa

from curate.schema import TABLES
from curate.store import LanceStore
from curate.versions import resolve


class Dataset:
    """Read-only handle on the tables of one dataset version. Nothing is read until a method asks."""

    def __init__(self, uri: str, version: str | int | None = None, *, storage_options: dict | None = None):
        self.store = LanceStore(uri, storage_options)
        if not self.store.exists("candidates"):
            raise FileNotFoundError(f"no curated dataset at {uri}")
        self.version = version
        self.versions = resolve(self.store, version) if version is not None else {}

    def _ds(self, name: str):
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r} (one of {', '.join(TABLES)})")
        return self.store.open(name, version=self.versions.get(name))

    def table(self, name: str, *, columns: list[str] | None = None, filter: str | None = None,
              limit: int | None = None) -> pa.Table:
        """Arrow table of `name`, reading only `columns` and the rows `filter` (SQL) selects."""
        return self._ds(name).to_table(columns=columns, filter=filter, limit=limit)

    def videos(self, **kw):
        return self.table("videos", **kw).to_pandas()

    def candidates(self, **kw):
        return self.table("candidates", **kw).to_pandas()

    def clips(self, **kw):
        kw.setdefault("columns", [c for c in self._ds("clips").schema.names if c != "video"])  # not the blobs
        return self.table("clips", **kw).to_pandas()

    def clip_bytes(self, clip_id: str) -> bytes:
        """The mp4 of one clip (read from the blob column, lazily)."""
        ids = self.store.column("clips", "clip_id", version=self.versions.get("clips"))
        if clip_id not in ids:
            raise KeyError(clip_id)
        return self._ds("clips").take_blobs("video", indices=[ids.index(clip_id)])[0].read()

    def funnel(self) -> dict[str, int]:
        """Videos in, videos ok, scenes, kept, clips, captioned."""
        videos = self.table("videos", columns=["status"]).column("status").to_pylist()
        keep = self.table("candidates", columns=["keep"]).column("keep").to_pylist()
        captions = self.table("clips", columns=["caption"]).column("caption").to_pylist()
        return {"videos": len(videos), "videos_ok": videos.count("ok"), "scenes": len(keep),
                "kept": sum(bool(k) for k in keep), "clips": len(captions),
                "captioned": sum(c is not None for c in captions)}

    def drop_reasons(self) -> dict[str, int]:
        """How many scenes each reason drops (a scene can count under several)."""
        counts: dict[str, int] = {}
        for reasons in self.table("candidates", columns=["drop_reasons"]).column("drop_reasons").to_pylist():
            for r in reasons or []:
                counts[r] = counts.get(r, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def preview(self, *, filter: str | None = None, n: int = 8, caption: str = "drop_reasons") -> Preview:
        """A grid of the first keyframe of up to `n` scenes; shows itself inline in Jupyter."""
        rows = self.table("candidates", columns=["clip_id", "keyframes", "keep", "drop_reasons", "duration_s"],
                          filter=filter, limit=n).to_pylist()
        return Preview(rows, caption)


@dataclass
class Preview:
    rows: list[dict]
    caption: str

    def _repr_html_(self) -> str:
        cells = []
        for r in self.rows:
            img = base64.b64encode(r["keyframes"][0]).decode() if r["keyframes"] else ""
            label = "kept" if r["keep"] else ", ".join(r["drop_reasons"] or []) or "dropped"
            cells.append(
                f'<figure style="display:inline-block;margin:4px;width:200px">'
                f'<img src="data:image/jpeg;base64,{img}" style="width:200px"/>'
                f'<figcaption style="font:11px monospace">{html.escape(label)} · {r["duration_s"]:.1f}s<br>'
                f'{html.escape(r["clip_id"][:8])}</figcaption></figure>')
        return f'<div class="curate-preview">{"".join(cells) or "no scenes match"}</div>'


def open_dataset(uri: str, version: str | int | None = None, **kw) -> Dataset:
    return Dataset(uri, version, **kw)
