"""Dataset versions: list them, tag them, diff two of them, clean up untagged ones.

A dataset version is the set of its tables' versions. A tag names each table at its own version (every run
tags `run-<id>`); a plain number N means the dataset while `clips.lance` was at version N: every other table at
its latest version committed before clips.lance moved on to N+1 (a job commits clips first, then candidates
and videos, so those belong with the clips version before them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from curate.store.lance_store import LanceStore
from curate.store.schema import TABLES
from curate.store.vectors import TABLE as EMBEDDINGS


def list_versions(store: LanceStore) -> dict[str, list[dict]]:
    """table -> [{version, timestamp, rows, tags}] oldest first."""
    out = {}
    for name in TABLES:
        ds = store.open(name)
        if ds is None:
            continue
        tags: dict[int, list[str]] = {}
        for tag, info in ds.tags.list().items():
            tags.setdefault(info["version"], []).append(tag)
        out[name] = [{"version": v["version"], "timestamp": v["timestamp"],
                      "rows": int(v["metadata"].get("total_rows", 0)), "tags": sorted(tags.get(v["version"], []))}
                     for v in ds.versions()]
    return out


def resolve(store: LanceStore, ref: str | int) -> dict[str, int]:
    """table -> version for a tag name or a `clips.lance` version number (see module docstring).

    Raises:
        ValueError: the tag or version does not exist.
    """
    if isinstance(ref, str) and not ref.isdigit():
        found = {}
        for name in TABLES:
            ds = store.open(name)
            tags = ds.tags.list() if ds is not None else {}
            if ref in tags:
                found[name] = tags[ref]["version"]
        if not found:
            raise ValueError(f"no tag {ref!r} in {store.uri} (see `curate versions`)")
        return found
    number = int(ref)
    versions = list_versions(store)
    clips = {v["version"]: v for v in versions.get("clips", [])}
    if number not in clips:
        raise ValueError(f"clips.lance has no version {number} (it has {min(clips)}..{max(clips)})")
    following = [v["timestamp"] for n, v in clips.items() if n > number]
    until = min(following) if following else None
    found = {"clips": number}
    for name, vs in versions.items():
        if name != "clips":
            before = [v["version"] for v in vs if until is None or v["timestamp"] < until]
            found[name] = before[-1] if before else vs[0]["version"]
    return found


def tag(store: LanceStore, name: str, *, at: str | int | None = None) -> dict[str, int]:
    """Tags every table at the versions `at` resolves to (the latest ones when None); returns them."""
    targets = resolve(store, at) if at is not None else {n: store.open(n).version for n in TABLES if store.exists(n)}
    for table, version in targets.items():
        ds = store.open(table)
        if name in ds.tags.list():
            ds.tags.update(name, version)
        else:
            ds.tags.create(name, version)
    return targets


@dataclass
class Diff:
    """Clips added and removed between two versions, each with why."""

    a: str
    b: str
    added: list[tuple[str, str]] = field(default_factory=list)  # (clip_id, why)
    removed: list[tuple[str, str]] = field(default_factory=list)
    captions_changed: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"{self.a} -> {self.b}: +{len(self.added)} clips, -{len(self.removed)} clips, "
                 f"{len(self.captions_changed)} captions changed"]
        lines += [f"  + {cid}  {why}" for cid, why in self.added]
        lines += [f"  - {cid}  {why}" for cid, why in self.removed]
        lines += [f"  ~ {cid}  caption changed" for cid in self.captions_changed]
        return "\n".join(lines)


def _read(store: LanceStore, versions: dict[str, int], name: str, columns: list[str]) -> pa.Table:
    ds = store.open(name, version=versions.get(name))
    if ds is None:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return ds.to_table(columns=columns)


def _not_in(table: pa.Table, column: str, values: pa.ChunkedArray) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table.column(column), value_set=values)))


def diff(store: LanceStore, a: str | int, b: str | int) -> Diff:
    """What changed in `clips.lance` from version `a` to `b`, and why: new or gone videos, new thresholds
    (with the reasons that now apply), duplicates (of which kept scene), new or vanished scenes; and captions
    that changed. Joins on the ids (Arrow), so only the rows that changed become Python objects."""
    va, vb = resolve(store, a), resolve(store, b)
    clips_a = _read(store, va, "clips", ["clip_id", "video_id"])
    clips_b = _read(store, vb, "clips", ["clip_id", "video_id"])
    added = _not_in(clips_b, "clip_id", clips_a.column("clip_id")).sort_by("clip_id")
    removed = _not_in(clips_a, "clip_id", clips_b.column("clip_id")).sort_by("clip_id")
    out = Diff(a=str(a), b=str(b))
    if added.num_rows or removed.num_rows:
        videos_a = _read(store, va, "videos", ["video_id"]).column("video_id")
        videos_b = _read(store, vb, "videos", ["video_id"]).column("video_id")
        cands_a = _decisions(store, va, added.column("clip_id"))
        cands_b = _decisions(store, vb, removed.column("clip_id"))
        new_video = pc.invert(pc.is_in(added.column("video_id"), value_set=videos_a)).to_pylist()
        for cid, is_new in zip(added.column("clip_id").to_pylist(), new_video):
            if is_new:
                why = "new video"
            elif cid in cands_a:
                why = f"new thresholds (was dropped: {', '.join(cands_a[cid][1]) or 'not encoded'})"
            else:
                why = "new scene"
            out.added.append((cid, why))
        gone_video = pc.invert(pc.is_in(removed.column("video_id"), value_set=videos_b)).to_pylist()
        for cid, gone in zip(removed.column("clip_id").to_pylist(), gone_video):
            if gone:
                why = "video removed"
            elif cid in cands_b and cands_b[cid][2]:
                why = f"duplicate of {cands_b[cid][2]} (now: {', '.join(cands_b[cid][1])})"
            elif cid in cands_b and not cands_b[cid][0]:
                why = f"new thresholds (now: {', '.join(cands_b[cid][1])})"
            else:
                why = "scene removed"
            out.removed.append((cid, why))
    out.captions_changed = _captions_changed(store, va, vb)
    return out


def _decisions(store: LanceStore, versions: dict[str, int],
               clip_ids) -> dict[str, tuple[bool, list[str], str | None]]:
    """clip_id -> (keep, drop_reasons, duplicate_of) in candidates.lance at `versions`, for `clip_ids` only (a
    join). Versions from before dedup have no duplicate_of: None."""
    ds = store.open("candidates", version=versions.get("candidates"))
    columns = ["clip_id", "keep", "drop_reasons"]
    if ds is not None and "duplicate_of" in ds.schema.names:
        columns.append("duplicate_of")
    cands = _read(store, versions, "candidates", columns)
    if not len(clip_ids) or not cands.num_rows:
        return {}
    rows = cands.filter(pc.is_in(cands.column("clip_id"), value_set=clip_ids)).to_pylist()
    return {r["clip_id"]: (r["keep"], r["drop_reasons"] or [], r.get("duplicate_of")) for r in rows}


def _captions_changed(store: LanceStore, va: dict[str, int], vb: dict[str, int]) -> list[str]:
    """Clips in both versions whose caption or caption JSON differs."""
    columns = ["clip_id", "caption", "caption_json"]
    both = _read(store, va, "clips", columns).join(_read(store, vb, "clips", columns), "clip_id",
                                                     left_suffix="_a", right_suffix="_b", join_type="inner")
    if not both.num_rows:
        return []
    differs = None
    for column in ("caption", "caption_json"):
        x, y = both.column(f"{column}_a"), both.column(f"{column}_b")
        # null-safe: equal when both null, different when only one is
        neq = pc.fill_null(pc.not_equal(x, y), True)
        neq = pc.and_(neq, pc.invert(pc.and_(pc.is_null(x), pc.is_null(y))))
        differs = neq if differs is None else pc.or_(differs, neq)
    return sorted(both.filter(differs).column("clip_id").to_pylist())


def cleanup(store: LanceStore, *, older_than: timedelta) -> dict[str, int]:
    """Removes untagged versions older than `older_than` (tagged ones, and the latest, always stay).

    Returns:
        table -> number of versions removed.
    """
    removed = {}
    for name in (*TABLES, EMBEDDINGS):  # the embeddings too: every sync of the index leaves a version
        ds = store.open(name)
        if ds is None:
            continue
        before = len(ds.versions())
        ds.cleanup_old_versions(older_than=older_than, error_if_tagged_old_versions=False)
        removed[name] = before - len(store.open(name).versions())
    return removed
