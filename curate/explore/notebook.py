"""`curate.open`: a curated dataset in a notebook, at any version, read lazily.

    ds = curate.open("out/", version="run-2026...")        # a tag, a clips.lance number, or None (latest)
    ds.candidates(columns=["clip_id", "aesthetic", "keep"], filter="aesthetic >= 5")   # pandas
    ds.table("clips", columns=["clip_id", "duration_s"])   # Arrow
    ds.funnel()                                            # videos -> scenes -> kept -> clips -> captioned
    ds.histograms()                                        # score histograms, the run's thresholds drawn on
    ds.preview(filter="keep = false", n=12, animated=True) # a grid of (animated) previews, inline
    ds.preview_by_reason(n=4)                              # kept and dropped, a row per drop reason
    ds.captions()                                          # caption browser
    ds.what_if(min_motion=0.01)                            # newly kept/dropped under other thresholds
    ds.duplicates(n=8)                                     # duplicate groups (curate dedup), kept scene first
    ds.search(text="a red car at night", k=12)             # nearest scenes through the vector index (pandas)
"""

from __future__ import annotations

import dataclasses
import html
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from curate.config import Config
from curate.explore.visuals import (
    POLICY_SCORES,
    Captions,
    Plot,
    Preview,
    Tile,
    clip_animation,
    histograms_plot,
    keyframe_still,
    keyframes_animation,
    why_boxes,
)
from curate.store.lance_store import LanceStore, sql_in
from curate.store.schema import TABLES
from curate.store.versions import resolve
from filters.policy import KeepPolicy

_BOXED_REASONS = {"watermark", "text", "text_overlay"}  # drops whose cause has a place in the frame
_PREVIEW_COLUMNS = ["clip_id", "keyframes", "keep", "drop_reasons", "duration_s", "watermark_box", "text_boxes"]
_CAPTION_COLUMNS = ["clip_id", "duration_s", "caption", "caption_short", "caption_json", "caption_status",
                    "caption_model", "prompt_id"]
_LATER_CAPTION_COLUMNS = ["caption_clip_score", "rewrite_short", "rewrite_dense", "rewrite_model"]  # newer datasets


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

    def table_versions(self) -> dict[str, dict]:
        """table -> {"version": the version read, "tags": the tags on it}."""
        out = {}
        for name in TABLES:
            ds = self._ds(name)
            if ds is not None:
                out[name] = {"version": ds.version,
                             "tags": sorted(t for t, v in ds.tags.list().items() if v["version"] == ds.version)}
        return out

    def runs(self):
        """The runs (curate run and refilter) recorded at this version, oldest first, as pandas."""
        return self.table("runs").to_pandas().sort_values("finished_at", ignore_index=True)

    def clip_bytes(self, clip_id: str) -> bytes:
        """The mp4 of one clip (read from the blob column, lazily)."""
        found = self._clip_blobs([clip_id])
        if clip_id not in found:
            raise KeyError(clip_id)
        return found[clip_id]

    def _clip_blobs(self, clip_ids: list[str]) -> dict[str, bytes]:
        """clip_id -> mp4 for those of `clip_ids` that are in clips.lance at this version."""
        ids = self.store.column("clips", "clip_id", version=self.versions.get("clips"))
        rows = {cid: i for i, cid in enumerate(ids)}
        wanted = [cid for cid in dict.fromkeys(clip_ids) if cid in rows]
        if not wanted:
            return {}
        blobs = self._ds("clips").take_blobs("video", indices=[rows[cid] for cid in wanted])
        return {cid: b.read() for cid, b in zip(wanted, blobs)}

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
        counts = Counter(r for reasons in self.table("candidates", columns=["drop_reasons"])
                         .column("drop_reasons").to_pylist() for r in reasons or [])
        return dict(counts.most_common())

    # Thresholds ---------------------------------------------------------------------------------------------
    def policy(self, **overrides) -> KeepPolicy:
        """The keep/drop policy of the last run recorded at this version (its stored config), with `overrides`
        (policy fields, e.g. `min_motion=0.01`; None turns a threshold off) applied over it. A version caught
        inside the first run (before its row was written) gets that run's policy; the config's default policy
        section (`Config().policy`) when no run's policy was ever recorded.

        Raises:
            ValueError: an override that is not a policy field.
        """
        import yaml

        known = {f.name for f in dataclasses.fields(KeepPolicy)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown policy field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        columns = ["config_yaml", "finished_at"]
        rows = sorted(self.table("runs", columns=columns).to_pylist(), key=lambda r: r["finished_at"])[-1:]
        if not rows:
            rows = sorted(self.store.open("runs").to_table(columns=columns).to_pylist(),
                          key=lambda r: r["finished_at"])[:1]
        stored = (yaml.safe_load(rows[0]["config_yaml"]) or {}).get("policy") or {} if rows else {}
        if not stored:
            return dataclasses.replace(KeepPolicy.from_config(Config().policy), **overrides)
        return KeepPolicy(**{**{k: v for k, v in stored.items() if k in known}, **overrides})

    def score_columns(self) -> list[str]:
        """The score columns some threshold applies to that this dataset has (older datasets have fewer)."""
        names = set(self._ds("candidates").schema.names)
        return [c for c in POLICY_SCORES if c in names]

    def _scores(self, columns: list[str]):
        return self.candidates(columns=[*dict.fromkeys([*columns, "keep"])])

    def histogram(self, score: str, *, thresholds: KeepPolicy | dict | None = None, bins: int = 20,
                  log: bool = False) -> Plot:
        """Histogram of one score column over all scenes, kept and dropped stacked, with the thresholds of the
        run's policy (or of `thresholds`: a KeepPolicy, or overrides over the run's policy) drawn on it."""
        return self.histograms([score], thresholds=thresholds, bins=bins, log=log)

    def histograms(self, scores: list[str] | None = None, *, thresholds: KeepPolicy | dict | None = None,
                   bins: int = 20, log: bool = False, ncols: int = 3) -> Plot:
        """`histogram` for several scores in one figure (default: every score some threshold applies to)."""
        scores = scores or self.score_columns()
        policy = thresholds if isinstance(thresholds, KeepPolicy) else self.policy(**(thresholds or {}))
        return histograms_plot(self._scores(scores), policy, scores, bins=bins, log=log, ncols=ncols)

    def what_if(self, overrides: dict | None = None, **kw) -> WhatIf:
        """Re-applies the run's policy with `overrides` (policy fields) to the stored scores; writes nothing.

        `curate refilter` makes the same decisions for real (and encodes the newly kept clips).
        """
        policy = self.policy(**{**(overrides or {}), **kw})
        have = set(self._ds("candidates").schema.names)  # older datasets lack some of the policy's inputs
        rows = self.table("candidates", columns=["clip_id", "keep", *(c for c in policy.inputs if c in have)]
                          ).to_pylist()
        before = [bool(r.pop("keep")) for r in rows]
        decided = policy(rows)
        out = WhatIf(policy=policy, scenes=len(decided), kept_before=sum(before),
                     kept_after=sum(r["keep"] for r in decided))
        for r, was in zip(decided, before):
            if r["keep"] != was:
                (out.newly_kept if r["keep"] else out.newly_dropped).append(r["clip_id"])
        out.reasons_after = dict(Counter(x for r in decided for x in r["drop_reasons"]).most_common())
        return out

    # Pictures ---------------------------------------------------------------------------------------------
    def _tiles(self, rows: list[dict], *, animated: bool, frames: int = 8) -> list[Tile]:
        """A tile a scene: its clip's frames (kept, animated), else its keyframes (animated or the first). A scene
        dropped for an overlay or text reason shows the boxes that caused it (see `visuals.why_boxes`)."""
        mp4s = self._clip_blobs([r["clip_id"] for r in rows if r["keep"]]) if animated else {}
        tiles = []
        for r in rows:
            label = "kept" if r["keep"] else ", ".join(r["drop_reasons"] or []) or "dropped"
            detail = f"{r['duration_s']:.1f}s · {r['clip_id'][:8]}"
            keyframes = r.get("keyframes") or []
            boxes = why_boxes(r) if set(r["drop_reasons"] or []) & _BOXED_REASONS else []
            if r["clip_id"] in mp4s:
                tiles.append(Tile(clip_animation(mp4s[r["clip_id"]], frames=frames), "image/webp", label, detail))
            elif animated and keyframes:
                tiles.append(Tile(keyframes_animation(keyframes, boxes=boxes), "image/webp", label, detail))
            else:
                tiles.append(Tile(keyframe_still(keyframes[0], boxes) if keyframes else None, "image/jpeg", label,
                                  detail))
        return tiles

    def preview(self, *, filter: str | None = None, n: int = 8, animated: bool = False, frames: int = 8) -> Preview:
        """Up to `n` scenes (`filter` is SQL over candidates): the first keyframe of each, or with `animated`
        a short animated preview (kept clips: `frames` frames decoded from the clip; dropped: the keyframes)."""
        rows = self.table("candidates", columns=_PREVIEW_COLUMNS, filter=filter, limit=n).to_pylist()
        return Preview([("", self._tiles(rows, animated=animated, frames=frames))])

    def preview_by_reason(self, *, n: int = 4, animated: bool = True, frames: int = 8) -> Preview:
        """Up to `n` kept scenes, then up to `n` dropped scenes for each drop reason (most frequent first)."""
        groups = [("kept", self.table("candidates", columns=_PREVIEW_COLUMNS, filter="keep = true", limit=n))]
        for reason, count in self.drop_reasons().items():
            rows = self.table("candidates", columns=_PREVIEW_COLUMNS, limit=n,
                              filter=f"array_has_any(drop_reasons, [{reason!r}])")
            groups.append((f"{reason} ({count} scene{'s' * (count != 1)})", rows))
        return Preview([(title, self._tiles(t.to_pylist(), animated=animated, frames=frames))
                        for title, t in groups])

    def duplicate_groups(self) -> dict[str, int]:
        """dup_group (the kept scene's clip_id) -> members, largest first, from the last `curate dedup`."""
        if "dup_group" not in self._ds("candidates").schema.names:  # a dataset from before dedup
            return {}
        marks = self.table("candidates", columns=["dup_group"], filter="dup_group IS NOT NULL").column("dup_group")
        return dict(Counter(marks.to_pylist()).most_common())

    def duplicates(self, *, n: int = 8, members: int = 6, animated: bool = False) -> Preview:
        """Up to `n` duplicate groups (largest first), a row each: the kept scene first, then up to `members`
        of the others, each labelled with its drop reasons."""
        rows = []
        for gid, count in list(self.duplicate_groups().items())[:n]:
            scenes = self.table("candidates", columns=_PREVIEW_COLUMNS + ["duplicate_of"],
                                filter=f"dup_group = {gid!r}").to_pylist()
            scenes.sort(key=lambda r: (r["duplicate_of"] is not None, r["clip_id"]))
            rows.append((f"group of {count}: kept {gid[:8]}", self._tiles(scenes[:members + 1], animated=animated)))
        return Preview(rows or [("no duplicate groups (run `curate dedup`)", [])])

    def search(self, *, text: str | None = None, like: str | None = None, image=None, k: int = 20,
               where: str | None = None, config=None, profile: str | None = None):
        """The `k` scenes nearest a text, a scene (`like`: a clip_id) or an image file, as pandas (see
        curate/explore/search.py). Searches the latest embeddings whatever version this handle reads."""
        from curate.explore.search import dataset_settings, search

        cfg = dataset_settings(self.store.uri, config, profile)
        return search(self.store, cfg, text=text, like=like, image=image, k=k, where=where).to_pandas()

    def captions(self, *, filter: str | None = None, n: int = 20, animated: bool = False) -> Captions:
        """Caption browser: up to `n` captioned clips (`filter` is SQL over clips) with a preview of each."""
        where = "caption IS NOT NULL" + (f" AND ({filter})" if filter else "")
        have = set(self._ds("clips").schema.names)
        columns = _CAPTION_COLUMNS + [c for c in _LATER_CAPTION_COLUMNS if c in have]
        rows = self.table("clips", columns=columns, filter=where, limit=n).to_pylist()
        has_error = "caption_error" in self._ds("clips").schema.names  # datasets from before the captioner lack it
        outcome = self.table("clips", columns=["caption_status", "caption_error"] if has_error else ["caption_status"])
        statuses = Counter(s or "not captioned" for s in outcome.column("caption_status").to_pylist())
        errors = Counter(e for s, e in zip(outcome.column("caption_status").to_pylist(),
                                           outcome.column("caption_error").to_pylist()) if s == "failed" and e
                         ) if has_error else Counter()
        scenes = self.table("candidates", columns=_PREVIEW_COLUMNS,
                            filter=sql_in("clip_id", [r["clip_id"] for r in rows])).to_pylist() if rows else []
        tiles = dict(zip([s["clip_id"] for s in scenes], self._tiles(scenes, animated=animated)))
        return Captions(rows, [tiles.get(r["clip_id"]) for r in rows], dict(statuses), dict(errors.most_common(5)))


@dataclass
class WhatIf:
    """What a policy would decide over the stored scores, against what is stored."""

    policy: KeepPolicy
    scenes: int
    kept_before: int
    kept_after: int
    newly_kept: list[str] = dataclasses.field(default_factory=list)
    newly_dropped: list[str] = dataclasses.field(default_factory=list)
    reasons_after: dict[str, int] = dataclasses.field(default_factory=dict)

    def format(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.reasons_after.items()) or "none"
        return (f"{self.scenes} scenes: kept {self.kept_before} -> {self.kept_after} "
                f"(+{len(self.newly_kept)} newly kept, -{len(self.newly_dropped)} newly dropped); "
                f"drop reasons after: {reasons}")

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.format())}</pre>"


def open_dataset(uri: str, version: str | int | None = None, **kw) -> Dataset:
    return Dataset(uri, version, **kw)
