"""`curate dedup`: duplicate groups over the whole dataset, applied as `curate refilter` applies thresholds.

1. Pairs. Exact: scenes with one `content_hash` (an Arrow group-by). Near and semantic, as SemDeDup does: a
   k-means over one vector per scene (lance.util.KMeans on a sample) splits the dataset into partitions of about
   `dedup.partition_rows`; each scene joins its `dedup.probes` nearest partitions, and a Ray task per partition
   compares its scenes all against all (filters/dedup.py's distance matrices), keeping the pairs within the
   threshold. Memory is bounded by the partition size, not by the dataset; the driver holds only the pairs.
2. Groups: the connected components of the pairs. Each keeps one scene, the first by: passing every other policy
   rule, then `dedup.rank_by` (higher first), then clip_id. Every member gets `dup_group` (the kept scene's
   clip_id); the others `duplicate_of` too. A dedup replaces the marks of the last one.
3. Apply: the policy (with `drop_duplicates`) over the stored scores, through refilter: the clips of newly
   dropped scenes are deleted, a scene no longer anyone's duplicate is encoded, and every table gets a new
   version tagged `run-<id>`, so `curate diff` shows what went and why (`duplicate`).

Everything is read from what the analysis pass stored; nothing is decoded again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.config import Config, DedupLevel
from curate.explore.search import dataset_settings
from curate.job.refilter import refilter
from curate.store.lance_store import LanceStore
from curate.store.vectors import sync_index

# The column each level compares, and the k-means metric on its per-scene vectors.
LEVEL_COLUMN = {"exact": "content_hash", "near": "sample_hashes", "semantic": "clip_embedding"}
_MARKS = pa.schema([pa.field("clip_id", pa.string()), pa.field("dup_group", pa.string()),
                    pa.field("duplicate_of", pa.string())])
_PAIRS = pa.schema([pa.field("a", pa.string()), pa.field("b", pa.string()), pa.field("distance", pa.float32())])
KMEANS_SAMPLE = 65536  # scenes the k-means trains on


@dataclass
class DedupSummary:
    output: str
    levels: list[str]
    thresholds: dict[str, float]
    scenes: int = 0
    signed: dict[str, int] = field(default_factory=dict)  # scenes with the level's signature
    partitions: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    groups: int = 0
    duplicates: int = 0  # scenes marked duplicate_of
    marks_changed: int = 0
    would_drop: int = 0  # kept scenes the marks drop (dry run) / dropped (else: see refilter)
    dry_run: bool = False
    wall_s: float = 0.0
    refilter: dict | None = None
    largest: list[dict] = field(default_factory=list)  # the biggest groups: kept clip and member count

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        head = "dry run: would mark" if self.dry_run else "dedup marked"
        lines = [f"{head} {self.duplicates} duplicates in {self.groups} groups of {self.scenes} scenes ({self.output})"]
        for level in self.levels:
            lines.append(f"  {level}: threshold {self.thresholds.get(level, 0):g}, {self.signed.get(level, 0)} scenes "
                         f"signed, {self.partitions.get(level, 0)} partitions, {self.pairs.get(level, 0)} pairs")
        lines.append(f"  kept scenes now dropped as duplicates: {self.would_drop}; marks changed: {self.marks_changed}")
        if self.refilter:
            r = self.refilter
            lines.append(f"  applied: newly dropped {r['newly_dropped']}, newly kept {r['newly_kept']}, kept after "
                         f"{r['kept']}; versions {r['versions']} (tag run-{r['run_id']})")
        lines.append(f"  wall: {self.wall_s:.1f} s")
        return "\n".join(lines)


def dedup(uri: str, *, config: Config | str | None = None, profile: str | None = None,
          levels: Iterable[DedupLevel] | None = None, threshold: float | None = None, address: str | None = None,
          dry_run: bool = False) -> DedupSummary:
    """Groups the duplicates of the dataset at `uri`, marks them and applies the policy (module docstring).

    Args:
        config: the settings (`dedup`, `policy`, `encode` for scenes to encode); default: the config of the
            dataset's latest run, so that its thresholds stay as they were.
        levels: which levels to union (default `dedup.levels`).
        threshold: overrides the threshold of the one level given.
        dry_run: only count; nothing is written.

    Raises:
        FileNotFoundError: no curated dataset at `uri`.
        ValueError: a threshold for more than one level.
    """
    started = time.monotonic()
    cfg = dataset_settings(uri, config, profile)
    levels = list(dict.fromkeys(levels or cfg.dedup.levels))
    unknown = [lv for lv in levels if lv not in LEVEL_COLUMN]
    if unknown:
        raise ValueError(f"unknown dedup level {unknown[0]!r} (exact, near, semantic)")
    thresholds = {"near": cfg.dedup.near_threshold, "semantic": cfg.dedup.semantic_threshold, "exact": 0.0}
    if threshold is not None:
        if len(levels) != 1 or levels[0] == "exact":
            raise ValueError("--threshold needs exactly one level, near or semantic (exact has none)")
        if not 0 <= threshold <= (1 if levels[0] == "near" else 2):
            raise ValueError(f"--threshold {threshold}: a {levels[0]} distance lies in [0, "
                             f"{1 if levels[0] == 'near' else 2}]")
        thresholds[levels[0]] = threshold
    store = LanceStore(uri, cfg.storage_options or None)
    if store.open("candidates") is None:
        raise FileNotFoundError(f"no curated dataset at {uri}")
    if not dry_run:
        store.ensure_tables()  # a dataset from before dedup gets its columns
    summary = DedupSummary(output=uri, levels=levels, thresholds={k: thresholds[k] for k in levels},
                           dry_run=dry_run)
    pairs = []
    for level in levels:
        found = _pairs(store, level, thresholds[level], cfg, summary, address)
        summary.pairs[level] = found.num_rows
        pairs.append(found)
    scenes = _scene_table(store, cfg)
    summary.scenes = scenes.num_rows
    marks = mark_groups(scenes, pa.concat_tables(pairs) if pairs else _PAIRS.empty_table(), cfg)
    summary.groups = len(set(marks.column("dup_group").drop_null().to_pylist()))
    summary.duplicates = len(marks.column("duplicate_of").drop_null())
    summary.largest = _largest(marks)
    changed = _changed(scenes, marks)
    summary.marks_changed = changed.num_rows
    summary.would_drop = _would_drop(scenes, marks, cfg)
    if not dry_run:
        if changed.num_rows:
            store.update_columns("candidates", changed, key="clip_id")
        summary.refilter = refilter(uri, config=cfg, address=address, label=f"dedup {uri}").to_dict()
        sync_index(store)  # the search index follows the dataset
    summary.wall_s = time.monotonic() - started
    return summary


def _scene_table(store: LanceStore, cfg: Config) -> pa.Table:
    """The columns ranking and the policy read, for every scene (no media, no signatures)."""
    from filters.policy import KeepPolicy

    cands = store.open("candidates")
    have = set(cands.schema.names)
    wanted = ["clip_id", "video_id", "keep", "drop_reasons", "dup_group", "duplicate_of",
              *cfg.dedup.rank_by, *KeepPolicy.inputs]
    return cands.to_table(columns=[c for c in dict.fromkeys(wanted) if c in have], filter="clip_id IS NOT NULL")


def mark_groups(scenes: pa.Table, pairs: pa.Table, cfg: Config) -> pa.Table:
    """`_MARKS` for every scene of `scenes`: its group (the connected components of `pairs`) and, for all but
    the group's best scene, `duplicate_of` that scene."""
    from filters.policy import KeepPolicy

    ids = scenes.column("clip_id").to_pylist()
    index = {c: i for i, c in enumerate(ids)}
    parent = np.arange(len(ids))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(pairs.column("a").to_pylist(), pairs.column("b").to_pylist()):
        if a in index and b in index:
            ra, rb = root(index[a]), root(index[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(ids))])
    size = np.bincount(roots, minlength=len(ids))
    grouped = np.flatnonzero(size[roots] > 1)
    dup_group, duplicate_of = [None] * len(ids), [None] * len(ids)
    if len(grouped):
        # the best member is chosen among those the other rules keep
        others = dataclasses.replace(KeepPolicy.from_config(cfg.policy), drop_duplicates=False, score_only=False)
        passes = others.decide(scenes)[0].to_numpy(zero_copy_only=False)
        rank = [passes.astype(float)] + [_score(scenes, c) for c in cfg.dedup.rank_by]
        order = np.lexsort([np.array(ids, object)] + [-r for r in reversed(rank)]) if ids else []
        best: dict[int, int] = {}
        for i in order:  # best first
            best.setdefault(int(roots[i]), int(i))
        for i in grouped:
            keeper = best[int(roots[i])]
            dup_group[i] = ids[keeper]
            if i != keeper:
                duplicate_of[i] = ids[keeper]
    return pa.table({"clip_id": ids, "dup_group": dup_group, "duplicate_of": duplicate_of}, schema=_MARKS)


def _score(scenes: pa.Table, column: str) -> np.ndarray:
    if column not in scenes.column_names:
        return np.zeros(scenes.num_rows)
    values = pc.cast(scenes.column(column), pa.float64()).to_numpy(zero_copy_only=False)
    return np.nan_to_num(values.astype(float), nan=-np.inf)


def _changed(scenes: pa.Table, marks: pa.Table) -> pa.Table:
    def same(column: str):
        old = scenes.column(column) if column in scenes.column_names else pa.nulls(scenes.num_rows, pa.string())
        new = marks.column(column)
        return pc.or_(pc.fill_null(pc.equal(old, new), False), pc.and_(pc.is_null(old), pc.is_null(new)))
    return marks.filter(pc.invert(pc.and_(same("dup_group"), same("duplicate_of"))))


def _would_drop(scenes: pa.Table, marks: pa.Table, cfg: Config) -> int:
    """Kept scenes that the policy drops once the marks are in."""
    from filters.policy import KeepPolicy

    if not cfg.policy.drop_duplicates:
        return 0
    marked = scenes.drop_columns([c for c in ("duplicate_of",) if c in scenes.column_names]).append_column(
        "duplicate_of", marks.column("duplicate_of"))
    keep = KeepPolicy.from_config(cfg.policy).decide(marked)[0]
    was = pc.fill_null(scenes.column("keep"), False)
    return pc.sum(pc.and_(was, pc.invert(keep))).as_py() or 0


def _largest(marks: pa.Table, n: int = 5) -> list[dict]:
    grouped = marks.filter(pc.is_valid(marks.column("dup_group")))
    if not grouped.num_rows:
        return []
    counts = grouped.group_by("dup_group").aggregate([("clip_id", "count")]).sort_by([("clip_id_count", "descending")])
    return [{"kept": g, "members": c} for g, c in zip(counts.column("dup_group").to_pylist()[:n],
                                                       counts.column("clip_id_count").to_pylist()[:n])]


# Pairs ----------------------------------------------------------------------------------------------------------
def _pairs(store: LanceStore, level: str, threshold: float, cfg: Config, summary: DedupSummary,
           address: str | None) -> pa.Table:
    """The pairs of scenes within `threshold` at `level` (`_PAIRS`)."""
    column = LEVEL_COLUMN[level]
    cands = store.open("candidates")
    if column not in cands.schema.names:
        summary.signed[level] = 0
        return _PAIRS.empty_table()
    present = f"clip_id IS NOT NULL AND {column} IS NOT NULL"
    summary.signed[level] = cands.count_rows(filter=present)
    if level == "exact":
        summary.partitions[level] = 0
        return exact_pairs(cands.to_table(columns=["clip_id", column], filter=present))
    if summary.signed[level] < 2:
        summary.partitions[level] = 0
        return _PAIRS.empty_table()
    centroids = _centroids(cands, level, summary.signed[level], cfg.dedup.partition_rows)
    summary.partitions[level] = len(centroids)
    return _partition_pairs(store, level, present, centroids, threshold, cfg, address)


def exact_pairs(table: pa.Table) -> pa.Table:
    """Each scene paired with the first scene of the same content hash."""
    column = table.column_names[1]
    first = table.group_by(column, use_threads=False).aggregate([("clip_id", "min")])
    joined = table.join(first, column)
    pairs = joined.filter(pc.not_equal(joined.column("clip_id"), joined.column("clip_id_min")))
    return pa.table({"a": pairs.column("clip_id_min"), "b": pairs.column("clip_id"),
                     "distance": pa.array(np.zeros(pairs.num_rows, np.float32))}, schema=_PAIRS)


def scene_vectors(level: str, values: list) -> np.ndarray:
    """(n, d) float32 vectors the k-means partitions `values` (one level's stored signatures) by."""
    from filters.dedup import hash_bits, near_vector

    if level == "near":
        return np.stack([near_vector(hash_bits(v)) for v in values]).astype(np.float32)
    e = np.asarray(values, np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def _centroids(cands, level: str, n: int, partition_rows: int) -> np.ndarray:
    """k-means centroids (k = n / partition_rows) trained on a sample of the scenes' vectors."""
    import lance.util

    k = max(1, round(n / partition_rows))
    column = LEVEL_COLUMN[level]
    if k == 1:
        return np.zeros((1, 1), np.float32)
    # Lance samples rows without a filter: rows without the signature (a failed video's) are dropped after.
    sample = cands.sample(min(cands.count_rows(), max(KMEANS_SAMPLE, 32 * k)), columns=[column])
    vectors = scene_vectors(level, sample.column(column).drop_null().to_pylist())
    kmeans = lance.util.KMeans(k, metric_type="l2", max_iters=20)
    kmeans.fit(vectors)
    return np.stack(kmeans.centroids.storage.to_numpy(zero_copy_only=False)).astype(np.float32)


class AssignPartitions:
    """Ray Data map: each scene, once per partition among its `probes` nearest, with its signature."""

    def __init__(self, level: str, centroids: np.ndarray, probes: int):
        self.level, self.centroids, self.probes = level, centroids, min(probes, len(centroids))

    def __call__(self, batch: pa.Table) -> pa.Table:
        column = LEVEL_COLUMN[self.level]
        n = batch.num_rows
        if len(self.centroids) == 1:
            part = np.zeros((n, 1), np.int32)
        else:
            v = scene_vectors(self.level, batch.column(column).to_pylist())
            d = (v ** 2).sum(1)[:, None] - 2 * v @ self.centroids.T + (self.centroids ** 2).sum(1)[None, :]
            part = np.argsort(d, axis=1)[:, :self.probes].astype(np.int32)
        take = np.repeat(np.arange(n), part.shape[1])
        return pa.table({"partition": part.reshape(-1), "clip_id": batch.column("clip_id").take(take),
                         "signature": batch.column(column).take(take)})


class PairsWithin:
    """Ray Data map_groups: every pair of one partition's scenes within the threshold."""

    def __init__(self, level: str, threshold: float):
        self.level, self.threshold = level, threshold

    def __call__(self, group: pa.Table) -> pa.Table:
        from filters.dedup import hash_bits, near_distances, semantic_distances

        ids = group.column("clip_id").to_pylist()
        values = group.column("signature").to_pylist()
        if self.level == "near":
            dist = near_distances([hash_bits(v) for v in values])
        else:
            dist = semantic_distances(np.asarray(values, np.float32))
        a, b = np.nonzero(np.triu(dist <= self.threshold, k=1))
        return pa.table({"a": pa.array([ids[i] for i in a], pa.string()),
                         "b": pa.array([ids[j] for j in b], pa.string()),
                         "distance": pa.array(dist[a, b].astype(np.float32))}, schema=_PAIRS)


def _partition_pairs(store: LanceStore, level: str, present: str, centroids: np.ndarray, threshold: float,
                     cfg: Config, address: str | None) -> pa.Table:
    import ray.data

    from curate.job.cluster import init_ray

    init_ray(address)
    column = LEVEL_COLUMN[level]
    ds = ray.data.read_lance(store.table_uri("candidates"), columns=["clip_id", column], filter=present,
                             storage_options=store.storage_options)
    ds = ds.map_batches(AssignPartitions(level, centroids, cfg.dedup.probes), batch_format="pyarrow",
                        batch_size=4096)
    within = PairsWithin(level, threshold)

    def pairs_within(group: pa.Table) -> pa.Table:  # map_groups takes a function (it reads its __name__)
        return within(group)

    ds = ds.groupby("partition").map_groups(pairs_within, batch_format="pyarrow")
    found = list(ds.iter_batches(batch_size=None, batch_format="pyarrow"))  # pyarrow Tables
    pairs = pa.concat_tables([_PAIRS.empty_table(), *(t.cast(_PAIRS) for t in found if t.num_rows)])
    if cfg.dedup.probes > 1 and pairs.num_rows:  # a pair met in two partitions counts once
        once = pairs.group_by(["a", "b"], use_threads=False).aggregate([("distance", "min")])
        pairs = pa.table({"a": once.column("a"), "b": once.column("b"), "distance": once.column("distance_min")},
                         schema=_PAIRS)
    return pairs
