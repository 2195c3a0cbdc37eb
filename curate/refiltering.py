"""`curate refilter`: new thresholds over the stored scores, with no decoding or scoring again.

Clips that become kept are encoded (the only read of their sources) and appended; clips that become dropped are
deleted; `candidates.lance` gets the new `keep` and `drop_reasons`, `videos.lance` the new counts; the result
is a new version of each table, tagged `run-<run_id>`. What to do is worked out from the stored state alone
(kept but not in `clips`, dropped but in `clips`), so a refilter cut off midway is finished by running it again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from curate.config import Config, resolve_config
from curate.store import LanceStore, sql_in

# Candidate columns that refilter reads (everything but the keyframe JPEGs).
_SKIP = {"keyframes"}


@dataclass
class RefilterSummary:
    run_id: str
    output: str
    candidates: int = 0
    newly_kept: int = 0
    newly_dropped: int = 0
    encoded: int = 0
    encode_failed: int = 0
    reasons_changed: int = 0
    kept: int = 0
    dry_run: bool = False
    wall_s: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        head = "dry run: would" if self.dry_run else "refilter"
        return "\n".join([
            f"{head} {self.run_id} -> {self.output}",
            f"  candidates: {self.candidates}, kept after: {self.kept}",
            f"  newly kept: {self.newly_kept} (encoded {self.encoded}, failed {self.encode_failed}), "
            f"newly dropped: {self.newly_dropped}, reasons changed: {self.reasons_changed}",
            f"  wall: {self.wall_s:.1f} s" + (f", versions: {self.versions} (tag run-{self.run_id})"
                                              if self.versions else ""),
        ])


def refilter(uri: str, *, config: Config | str | None = None, profile: str | None = None,
             address: str | None = None, dry_run: bool = False) -> RefilterSummary:
    """Applies the config's `policy` to the stored scores of the dataset at `uri` (see module docstring).

    Raises:
        FileNotFoundError: no curated dataset at `uri`.
        ConfigError: a bad config field.
    """
    from filters.policy import KeepPolicy

    from curate.api import new_run_id, package_version

    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    cfg = resolve_config(config, profile)
    store = LanceStore(uri, cfg.storage_options)
    cands_ds, videos_ds = store.open("candidates"), store.open("videos")
    if cands_ds is None or videos_ds is None:
        raise FileNotFoundError(f"no curated dataset at {uri}")
    summary = RefilterSummary(run_id=new_run_id(), output=uri, dry_run=dry_run)
    columns = [c for c in cands_ds.schema.names if c not in _SKIP]
    old = cands_ds.to_table(columns=columns).to_pylist()
    new = KeepPolicy.from_config(cfg.policy)([dict(r) for r in old])
    in_clips = set(store.column("clips", "clip_id"))
    to_encode = [r for r in new if r["keep"] and r["clip_id"] not in in_clips]
    to_delete = [r["clip_id"] for r in new if not r["keep"] and r["clip_id"] in in_clips]
    changed = {r["clip_id"]: r for r, o in zip(new, old) if (r["keep"], r["drop_reasons"]) != (o["keep"], o["drop_reasons"])}
    summary.candidates = len(new)
    summary.newly_kept = sum(1 for r, o in zip(new, old) if r["keep"] and not o["keep"])
    summary.newly_dropped = sum(1 for r, o in zip(new, old) if o["keep"] and not r["keep"])
    summary.reasons_changed = len(changed)
    if dry_run:
        summary.kept = sum(r["keep"] for r in new)
        summary.wall_s = time.monotonic() - started
        return summary

    if to_encode:
        videos = {v["video_id"]: v for v in videos_ds.to_table().to_pylist()}
        _encode(to_encode, videos, cfg, store, run_id=summary.run_id, address=address)
        in_clips = set(store.column("clips", "clip_id"))
        for r in to_encode:
            if r["clip_id"] in in_clips:
                summary.encoded += 1
            else:
                summary.encode_failed += 1
                r["keep"], r["drop_reasons"] = False, [*r["drop_reasons"], "encode_failed"]
                changed[r["clip_id"]] = r
    if to_delete:
        store.open("clips").delete(sql_in("clip_id", to_delete))
    if changed:
        _update_candidates(store, changed)
    _update_video_counts(store, new)
    summary.kept = sum(r["keep"] for r in new)
    summary.wall_s = time.monotonic() - started
    store.upsert_rows("runs", [{
        "run_id": summary.run_id, "started_at": started_at, "finished_at": datetime.now(timezone.utc),
        "status": "completed", "package_version": package_version(), "config_hash": cfg.digest(),
        "config_yaml": cfg.to_yaml(redact=True), "model_profile": cfg.profile, "inputs": [f"refilter {uri}"],
        "scenes": summary.candidates, "kept": summary.kept, "wall_s": summary.wall_s,
    }], key="run_id")
    summary.versions = store.tag_all(f"run-{summary.run_id}")
    return summary


def _encode(rows: list[dict], videos: dict, cfg: Config, store: LanceStore, *, run_id: str, address) -> None:
    """Captions and encodes newly kept scenes with the job's own stages on Ray; commits their clips.

    The analysis samples are not stored, so captions of these clips come from the stored keyframes
    (`samples.keyframes_per_scene` frames, 320 px) instead of `caption.frames` samples.
    """
    import pyarrow as pa
    import ray.data

    from curate.cluster import init_ray
    from curate.pipeline import _map, add_caption_stages
    from curate.schema import SCENE_ROW
    from curate.stages import EncodeStage, WriteStage

    init_ray(address)
    keyframes = {}
    if cfg.caption.enabled:  # read only for the scenes to caption (the full scan skips them)
        table = store.open("candidates").to_table(columns=["clip_id", "keyframes"],
                                                  filter=sql_in("clip_id", [r["clip_id"] for r in rows]))
        keyframes = dict(zip(table.column("clip_id").to_pylist(), table.column("keyframes").to_pylist()))
    items = [{**r, "video": videos[r["video_id"]], "keep": True, "samples": keyframes.get(r["clip_id"]),
              "sample_times": r.get("keyframe_times")} for r in rows]  # extra keys are ignored
    ds = ray.data.from_arrow(pa.Table.from_pylist(items, schema=SCENE_ROW))
    ds = add_caption_stages(ds, cfg)
    ds = _map(ds, EncodeStage(cfg), cfg.resources.encode)
    ds = _map(ds, WriteStage(store, run_id=run_id, profile=cfg.profile, candidates=False), cfg.resources.write)
    fragments = []
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        for frag_list in batch.column("clips_fragments").to_pylist():
            fragments.extend(frag_list or [])
    store.commit_fragments("clips", fragments, message=f"curate refilter {run_id}")


def _update_candidates(store: LanceStore, changed: dict[str, dict]) -> None:
    """Rewrites `keep` and `drop_reasons` of the changed rows (whole rows, matched on clip_id)."""
    import pyarrow as pa

    from curate.schema import CANDIDATES

    ds = store.open("candidates")
    rows = ds.to_table(filter=sql_in("clip_id", list(changed))).to_pylist()
    for row in rows:
        row["keep"], row["drop_reasons"] = changed[row["clip_id"]]["keep"], changed[row["clip_id"]]["drop_reasons"]
    ds.merge_insert("clip_id").when_matched_update_all().execute(pa.Table.from_pylist(rows, schema=CANDIDATES))


def _update_video_counts(store: LanceStore, decided: list[dict]) -> None:
    import pyarrow as pa

    from curate.schema import VIDEOS

    kept: dict[str, int] = {}
    for r in decided:
        kept[r["video_id"]] = kept.get(r["video_id"], 0) + bool(r["keep"])
    n_clips: dict[str, int] = {}
    for v in store.column("clips", "video_id"):
        n_clips[v] = n_clips.get(v, 0) + 1
    ds = store.open("videos")
    rows = ds.to_table().to_pylist()
    updated = [dict(r, num_kept=kept.get(r["video_id"], 0), num_clips=n_clips.get(r["video_id"], 0)) for r in rows
               if (r["num_kept"], r["num_clips"]) != (kept.get(r["video_id"], 0), n_clips.get(r["video_id"], 0))]
    if updated:
        ds.merge_insert("video_id").when_matched_update_all().execute(pa.Table.from_pylist(updated, schema=VIDEOS))
