"""The dataset at a million candidate rows: resume start-up, refilter and diff (issue 12).

A synthetic dataset in the real schemas (curate/store/schema.py): N videos of 10 scenes each, scores drawn at random,
kept scenes in `clips` with a few bytes of "video"; every table written as a job writes it, in many small
fragments. Each operation runs twice, side by side on two copies of the same dataset:
- as written: many small fragments, no index;
- after `LanceStore.optimize()`, what every run now ends with: fragments compacted, BTREE indexes on the ids.
The peer is a bare scan of the id columns each operation must at least read (`to_table(columns=...)`).

Operations, timed once each (they change the dataset):
1. resume start-up: what `curate run` does before its first video (live runs, dead runs marked, partial rows
   of dead runs removed, the finished inputs listed);
2. `curate refilter --dry-run` with a stricter `min_aesthetic` (5.0), then the real refilter (clips dropped only:
   nothing to encode);
3. `curate diff` between the version before the refilter and after it.

    .venv/bin/python bench/store_bench.py [--videos 100000] [--fragments 1000] [--workdir bench/out/store]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curate.config import Config  # noqa: E402
from curate.store.lance_store import LanceStore  # noqa: E402
from curate.store.schema import TABLES  # noqa: E402

SCENES_PER_VIDEO = 10


def _table(name: str, columns: dict[str, pa.Array], n: int) -> pa.Table:
    """A table of `name`'s schema: the given columns, nulls elsewhere."""
    schema = TABLES[name]
    return pa.Table.from_arrays([columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema],
                                schema=schema)


def synthetic(store: LanceStore, n_videos: int, fragments: int, seed: int = 0) -> dict[str, int]:
    """Writes the four tables; returns their row counts."""
    import lance

    from filters.policy import KeepPolicy

    rng = np.random.default_rng(seed)
    n = n_videos * SCENES_PER_VIDEO
    vid = np.char.add("v", np.arange(n_videos).astype(str))
    video_of = np.repeat(vid, SCENES_PER_VIDEO)
    clip_id = np.char.add(np.char.add(video_of, "-"), np.tile(np.arange(SCENES_PER_VIDEO), n_videos).astype(str))
    scores = {"duration_s": rng.uniform(0.5, 12, n), "aesthetic": rng.uniform(3, 7, n),
              "sharpness": rng.uniform(0, 500, n), "motion": rng.uniform(0, 0.05, n)}
    rows = [{"clip_id": "x", **{k: float(v[i]) for k, v in scores.items()}} for i in range(n)]
    decided = KeepPolicy.from_config(Config().policy)(rows)
    keep = np.array([r["keep"] for r in decided])
    reasons = pa.array([r["drop_reasons"] for r in decided], pa.list_(pa.string()))
    run = pa.array(["run-0"] * n)
    cands = _table("candidates", {"clip_id": pa.array(clip_id), "video_id": pa.array(video_of), "run_id": run,
                                  "keep": pa.array(keep), "drop_reasons": reasons,
                                  "start_frame": pa.array(np.arange(n) % SCENES_PER_VIDEO * 100),
                                  **{k: pa.array(v.astype(np.float32)) for k, v in scores.items()}}, n)
    kept = np.flatnonzero(keep)
    clips = _table("clips", {"clip_id": pa.array(clip_id[kept]), "video_id": pa.array(video_of[kept]),
                             "run_id": run.take(pa.array(kept)), "video": pa.array([b"\x00" * 16] * len(kept),
                                                                                    pa.large_binary()),
                             "caption": pa.array([f"caption {i}" for i in kept])}, len(kept))
    videos = _table("videos", {"video_id": pa.array(vid), "uri": pa.array(np.char.add("s3://raw/", vid)),
                               "status": pa.array(["ok"] * n_videos), "run_id": pa.array(["run-0"] * n_videos),
                               "num_scenes": pa.array([SCENES_PER_VIDEO] * n_videos, pa.int32())}, n_videos)
    for name, table in (("candidates", cands), ("clips", clips), ("videos", videos)):
        lance.write_dataset(table, store.table_uri(name), schema=TABLES[name], mode="overwrite",
                            max_rows_per_file=max(1, table.num_rows // fragments))
    store.ensure_tables()
    store.tag_all("run-0")
    return {"candidates": n, "clips": len(kept), "videos": n_videos}


def startup(store: LanceStore) -> int:
    live = store.live_runs(lease_s=300)
    store.mark_interrupted(live=live)
    store.drop_unfinished(keep_runs=live)
    return len(store.finished_uris())


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def scan_ids(store: LanceStore) -> float:
    """The peer: reading the id columns these operations join on."""
    t = time.perf_counter()
    for name, cols in (("videos", ["video_id", "uri", "status"]), ("candidates", ["clip_id", "video_id", "run_id"]),
                       ("clips", ["clip_id", "video_id"])):
        store.open(name).to_table(columns=cols)
    return time.perf_counter() - t


def measure(uri: str, n_videos: int, fragments: int, optimize: bool) -> dict[str, float]:
    from curate.job.refilter import refilter
    from curate.store.versions import diff

    shutil.rmtree(uri, ignore_errors=True)
    store = LanceStore(uri)
    t_gen, counts = _timed(synthetic, store, n_videos, fragments)
    out = {"generate": t_gen}
    if optimize:
        out["optimize"], _ = _timed(store.optimize)
    out["scan ids (peer)"] = scan_ids(store)
    out["resume start-up"], done = _timed(startup, store)
    assert done == n_videos, done
    cfg = Config()
    cfg.policy.min_aesthetic = 5.0  # stricter than the default 4.5: clips dropped, none newly kept
    out["refilter --dry-run"], dry = _timed(refilter, uri, config=cfg, dry_run=True)
    out["refilter"], real = _timed(refilter, uri, config=cfg)
    assert real.newly_kept == 0 and real.newly_dropped == dry.newly_dropped > 0, (dry, real)
    out["diff"], d = _timed(diff, store, "run-0", f"run-{real.run_id}")
    assert len(d.removed) == real.newly_dropped and not d.added, (len(d.removed), len(d.added))
    out["_rows"] = counts["candidates"]
    out["_dropped"] = real.newly_dropped
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=100_000, help="videos (10 candidate rows each)")
    ap.add_argument("--fragments", type=int, default=1000, help="fragments each table is written in")
    ap.add_argument("--workdir", default=str(REPO / "bench" / "out" / "store"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for label, optimize in (("as written", False), ("optimized", True)):
        print(f"{label}: {args.videos * SCENES_PER_VIDEO:,} candidates in {args.fragments} fragments ...", flush=True)
        results[label] = measure(str(work / label.replace(" ", "-")), args.videos, args.fragments, optimize)
    a, b = results["as written"], results["optimized"]
    print(f"\n{a['_rows']:,} candidate rows, {a['_dropped']:,} clips dropped by the refilter")
    print(f"{'operation':22s} {'as written s':>13s} {'optimized s':>12s} {'ratio':>7s} {'x peer scan':>12s}")
    for op in ("resume start-up", "refilter --dry-run", "refilter", "diff"):
        print(f"{op:22s} {a[op]:13.2f} {b[op]:12.2f} {b[op] / a[op]:7.2f} {b[op] / b['scan ids (peer)']:12.1f}")
    print(f"{'scan ids (peer)':22s} {a['scan ids (peer)']:13.2f} {b['scan ids (peer)']:12.2f}")
    if "optimize" in b:
        print(f"optimize (compaction + indexes), once after a run: {b['optimize']:.2f} s")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
