"""`curate refilter`: new thresholds over the stored scores, with no decoding or scoring again.

Clips that become kept are encoded (the only read of their sources) and appended; clips that become dropped are
deleted; `candidates.lance` gets the new `keep` and `drop_reasons`, `videos.lance` the new counts; the result
is a new version of each table, tagged `run-<run_id>`. What to do is worked out from the stored state alone
(kept but not in `clips`, dropped but in `clips`), so a refilter cut off midway is finished by running it again.

It streams the candidates in batches and joins on `clip_id` (Arrow `is_in` against the clips' ids, Lance
`merge_insert` to write only the changed decisions and counts), so a million rows cost seconds, not an `IN` list
of every id.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from curate.config import Config, resolve_config
from curate.store.lance_store import LanceStore, sql_in

# Candidate columns that refilter reads (everything but the keyframe JPEGs and the sample hashes).
_SKIP = {"keyframes", "sample_hashes"}
BATCH_ROWS = 65536  # candidates decided at a time: memory bounded by this, not by the dataset
_DECISION = pa.schema([pa.field("clip_id", pa.string()), pa.field("keep", pa.bool_()),
                       pa.field("drop_reasons", pa.list_(pa.string()))])
_AFTER = pa.schema([*_DECISION, pa.field("caption_clip_score", pa.float32()),
                    pa.field("encode_error", pa.string())])  # stages.DECISION_COLUMNS


@dataclass
class RefilterSummary:
    run_id: str
    output: str
    candidates: int = 0
    newly_kept: int = 0
    newly_dropped: int = 0
    encoded: int = 0
    encode_failed: int = 0
    caption_dropped: int = 0  # newly kept, then dropped by the caption rule (policy.min_caption_clip_score)
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
            f"  newly kept: {self.newly_kept} (encoded {self.encoded}, failed {self.encode_failed}"
            + (f", caption rule {self.caption_dropped}" if self.caption_dropped else "") + "), "
            f"newly dropped: {self.newly_dropped}, reasons changed: {self.reasons_changed}",
            f"  wall: {self.wall_s:.1f} s" + (f", versions: {self.versions} (tag run-{self.run_id})"
                                              if self.versions else ""),
        ])


def refilter(uri: str, *, config: Config | str | None = None, profile: str | None = None,
             address: str | None = None, dry_run: bool = False, label: str | None = None) -> RefilterSummary:
    """Applies the config's `policy` to the stored scores of the dataset at `uri` (see module docstring).

    `label` is what the `runs` row records as its input (default `refilter URI`; dedup passes its own).

    Raises:
        FileNotFoundError: no curated dataset at `uri`.
        ConfigError: a bad config field.
    """
    from curate.job.summary import new_run_id, package_version
    from filters.policy import KeepPolicy

    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    cfg = resolve_config(config, profile)
    store = LanceStore(uri, cfg.storage_options)
    cands_ds, videos_ds = store.open("candidates"), store.open("videos")
    if cands_ds is None or videos_ds is None:
        raise FileNotFoundError(f"no curated dataset at {uri}")
    summary = RefilterSummary(run_id=new_run_id(), output=uri, dry_run=dry_run)
    decided = _decide(store, KeepPolicy.from_config(cfg.policy), summary)
    if dry_run:
        summary.wall_s = time.monotonic() - started
        return summary

    changed = decided.changed
    if decided.to_encode:
        videos = {v["video_id"]: v for v in videos_ds.to_table().to_pylist()}
        after = _encode(decided.to_encode, videos, cfg, store, run_id=summary.run_id, address=address)
        changed = _after_encoding(changed, after, decided, summary, store)
    store.delete_keys("clips", "clip_id", decided.to_delete)
    store.update_columns("candidates", changed, key="clip_id")
    _update_video_counts(store, decided.kept_per_video)
    summary.wall_s = time.monotonic() - started
    store.upsert_rows("runs", [{
        "run_id": summary.run_id, "started_at": started_at, "finished_at": datetime.now(timezone.utc),
        "status": "completed", "package_version": package_version(), "config_hash": cfg.digest(),
        "config_yaml": cfg.to_yaml(redact=True), "model_profile": cfg.profile, "inputs": [label or f"refilter {uri}"],
        "scenes": summary.candidates, "kept": summary.kept, "wall_s": summary.wall_s,
    }], key="run_id")
    store.optimize()
    summary.versions = store.tag_all(f"run-{summary.run_id}")
    return summary


@dataclass
class _Decided:
    changed: pa.Table  # _DECISION rows whose keep or reasons changed
    to_encode: list[dict]  # whole candidate rows, newly kept and not in clips
    to_delete: pa.Array  # clip ids dropped now but in clips
    kept_per_video: dict[str, int]


def _decide(store: LanceStore, policy, summary: RefilterSummary) -> _Decided:
    """The policy over the stored scores (column by column, a batch of candidates at a time); fills the
    summary's counts."""
    cands = store.open("candidates")
    ids = cands.to_table(columns=["clip_id"]).column("clip_id")
    clipped_all = pc.is_in(ids, value_set=store.open("clips").to_table(columns=["clip_id"]).column("clip_id"))
    changed, to_encode, to_delete, per_video, offset = [], [], [], [], 0
    for batch in cands.to_batches(columns=[c for c in cands.schema.names if c not in _SKIP], batch_size=BATCH_ROWS):
        table = pa.Table.from_batches([batch])
        clipped = clipped_all.slice(offset, batch.num_rows)
        offset += batch.num_rows
        scene = pc.is_valid(table.column("clip_id"))  # not a failed video's row
        table = table.filter(scene)
        clipped = clipped.filter(scene)
        keep, reasons = policy.decide(table)
        was = pc.fill_null(table.column("keep"), False)
        moved = pc.or_(pc.not_equal(keep, was), pc.not_equal(
            pc.binary_join(reasons, "\x1f"), pc.fill_null(pc.binary_join(table.column("drop_reasons"), "\x1f"), "")))
        changed.append(pa.table({"clip_id": table.column("clip_id"), "keep": keep, "drop_reasons": reasons},
                                schema=_DECISION).filter(moved))
        encode = pc.and_(keep, pc.invert(clipped))
        to_encode += [dict(r, keep=True, drop_reasons=[], caption_clip_score=None)  # scored again once captioned
                      for r in table.filter(encode).to_pylist()]
        to_delete.append(table.column("clip_id").filter(pc.and_(pc.invert(keep), clipped)))
        per_video.append(pa.table({"video_id": table.column("video_id"), "keep": pc.cast(keep, pa.int32())}))
        summary.newly_kept += pc.sum(pc.and_(keep, pc.invert(was))).as_py() or 0
        summary.newly_dropped += pc.sum(pc.and_(was, pc.invert(keep))).as_py() or 0
        summary.kept += pc.sum(keep).as_py() or 0
        summary.candidates += batch.num_rows
    changed_table = pa.concat_tables(changed) if changed else _DECISION.empty_table()
    summary.reasons_changed = changed_table.num_rows
    kept = (pa.concat_tables(per_video).group_by("video_id").aggregate([("keep", "sum")]).to_pydict()
            if per_video else {"video_id": [], "keep_sum": []})
    return _Decided(changed=changed_table, to_encode=to_encode,
                    kept_per_video=dict(zip(kept["video_id"], kept["keep_sum"])),
                    to_delete=pa.chunked_array(to_delete, pa.string()).combine_chunks())


def _after_encoding(changed: pa.Table, after: pa.Table, decided: _Decided, summary: RefilterSummary,
                    store: LanceStore) -> pa.Table:
    """The decisions to store once the newly kept scenes went through captioning and encoding: a scene that did
    not reach `clips` was dropped there (its caption failed the caption rule, or its encode failed: the stages
    say which), and every re-captioned scene's `caption_clip_score` is stored with it."""
    in_clips = store.open("clips").to_table(columns=["clip_id"]).column("clip_id")
    ids = pa.array([r["clip_id"] for r in decided.to_encode], pa.string())
    failed = ids.filter(pc.invert(pc.is_in(ids, value_set=in_clips)))
    summary.encoded = len(ids) - len(failed)
    reasons = dict(zip(after.column("clip_id").to_pylist(), after.column("drop_reasons").to_pylist()))
    dropped = [(i, reasons.get(i) or ["encode_failed"]) for i in failed.to_pylist()]
    summary.encode_failed = sum("encode_failed" in why for _, why in dropped)
    if dropped:  # kept no more: recorded as such
        video_of = {r["clip_id"]: r["video_id"] for r in decided.to_encode}
        changed = pa.concat_tables([
            changed.filter(pc.invert(pc.is_in(changed.column("clip_id"), value_set=failed))),
            pa.table({"clip_id": failed, "keep": [False] * len(failed),
                      "drop_reasons": [why for _, why in dropped]}, schema=_DECISION)])
        for clip_id, _ in dropped:
            decided.kept_per_video[video_of[clip_id]] -= 1
        summary.kept -= len(dropped)
        summary.caption_dropped = len(dropped) - summary.encode_failed
    # the caption these clips now have is new (or none): its score replaces the stored one, null included; and
    # why an encode failed (null where it did not)
    store.update_columns("candidates", after.select(["clip_id", "caption_clip_score", "encode_error"]), key="clip_id")
    return changed


def _encode(rows: list[dict], videos: dict, cfg: Config, store: LanceStore, *, run_id: str, address) -> pa.Table:
    """Captions and encodes newly kept scenes with the job's own stages on Ray; commits their clips. Returns
    each scene's decision after those stages (DECISION_COLUMNS).

    The analysis samples are not stored, so captions of these clips come from the stored keyframes
    (`samples.keyframes_per_scene` frames, 320 px) instead of `caption.frames` samples.
    """
    import ray.data

    from curate.job.cluster import init_ray
    from curate.job.pipeline import Step, caption_steps, wire
    from curate.job.stages import EncodeStage, WriteStage
    from curate.store.schema import SCENE_ROW

    init_ray(address)
    keyframes = {}
    if cfg.caption.enabled:  # read only for the scenes to caption (the full scan skips them)
        table = store.open("candidates").to_table(columns=["clip_id", "keyframes"],
                                                  filter=sql_in("clip_id", [r["clip_id"] for r in rows]))
        keyframes = dict(zip(table.column("clip_id").to_pylist(), table.column("keyframes").to_pylist()))
    items = [{**r, "video": videos[r["video_id"]], "keep": True, "samples": keyframes.get(r["clip_id"]),
              "sample_times": r.get("keyframe_times")} for r in rows]  # extra keys are ignored
    ds = ray.data.from_arrow(pa.Table.from_pylist(items, schema=SCENE_ROW))
    ds = wire(ds, [*caption_steps(cfg), Step(EncodeStage(cfg), cfg.resources.encode),
                   Step(WriteStage(store, run_id=run_id, profile=cfg.profile, candidates=False), cfg.resources.write)])
    fragments, decisions = [], []
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.select(["clips_fragments", "decisions"]).to_pylist():
            fragments.extend(row["clips_fragments"] or [])
            decisions.extend(json.loads(d) for d in row["decisions"] or [])
    store.commit_fragments("clips", fragments, message=f"curate refilter {run_id}")
    return pa.Table.from_pylist(decisions, schema=_AFTER)


def _update_video_counts(store: LanceStore, kept: dict[str, int]) -> None:
    """Sets `num_kept` (from the new decisions) and `num_clips` (from clips.lance) where they changed."""
    counts = store.open("clips").to_table(columns=["video_id"]).group_by("video_id").aggregate([("video_id", "count")])
    n_clips = dict(zip(counts.column("video_id").to_pylist(), counts.column("video_id_count").to_pylist()))
    rows = store.open("videos").to_table(columns=["video_id", "num_kept", "num_clips"]).to_pylist()
    updated = [{"video_id": r["video_id"], "num_kept": kept.get(r["video_id"], 0),
                "num_clips": n_clips.get(r["video_id"], 0)} for r in rows
               if (r["num_kept"], r["num_clips"]) != (kept.get(r["video_id"], 0), n_clips.get(r["video_id"], 0))]
    if updated:
        store.update_columns("videos", pa.Table.from_pylist(updated, schema=pa.schema([
            pa.field("video_id", pa.string()), pa.field("num_kept", pa.int32()), pa.field("num_clips", pa.int32())])),
            key="video_id")
