"""Deduplication and similarity search (issue 15): how well the near level separates copies from distinct real
videos, what the signatures cost, and the vector index against exact search.

1. Near duplicates on real footage. Every real video of ../shared/testdata and reposts of bikes.mp4
   (tests/variants.py: CRF 32, 3/4 scale, 5% crop, letterbox, burned-in watermark, remux) through the analysis
   pass and the score stage's perceptual hashes; prints, per kind of repost, the largest distance of a repost's
   scene to its original's, the testdata's own re-encoded segment (coin_pen), and the closest pairs of distinct
   videos: the threshold must sit between the two. Also the hashes' cost against the analysis pass.
2. Vector search at scale. `--rows` synthetic embeddings (clustered, as CLIP's are: `--clusters` centres plus
   noise) in a Lance table with an IVF_PQ index (curate/store/vectors.py): the index build, then the top-10 of
   `--queries` queries against an exact numpy search (one matrix product over every vector) on the same vectors,
   side by side: median query time, speed-up and recall@10.

    .venv/bin/python bench/dedup_bench.py [--rows 1000000] [--dim 512] [--queries 200] [--skip-near] [--skip-index]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata"
OUT = REPO / "bench" / "out"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def near(args) -> None:
    from variants import KINDS, make_variants

    from curate.config import load_config
    from curate.job.analyze import analyze_source
    from curate.job.stages import LazyFrames, _sample_hashes
    from curate.video.sources import Source
    from filters.dedup import hash_bits, near_distances
    from filters.quality import quality_scores

    cfg = load_config(profile="tiny")
    files = sorted(p for p in (TESTDATA / "real").iterdir() if p.suffix != ".json")
    files += [TESTDATA / "videos" / "bikes.mp4", TESTDATA / "videos" / "bigbuckbunny.mp4"]
    reposts = make_variants(TESTDATA / "videos" / "bikes.mp4", OUT / "dedup_variants")
    names, bits, analysis_s, hash_s = [], [], 0.0, 0.0
    for path in [*files, *reposts.values()]:
        t = time.perf_counter()
        rows = [r for r in analyze_source(Source(str(path)), cfg) if r["clip_id"]]
        analysis_s += time.perf_counter() - t
        for r in rows:
            t = time.perf_counter()
            frames = LazyFrames(r["samples"])
            box = quality_scores([frames[i] for i in range(len(frames))])["content_box"]
            bits.append(hash_bits(_sample_hashes(frames, box)))
            hash_s += time.perf_counter() - t
            names.append((path.name, r["scene_index"]))
    d = near_distances(bits)
    at = {n: i for i, n in enumerate(names)}

    def origin(name: str) -> str:
        return "bikes" if name.startswith("bikes") else "coin_pen" if name.startswith("coin_pen") else name

    print("== near duplicates on real footage (share of differing hash bits; threshold "
          f"{cfg.dedup.near_threshold}) ==")
    print(f"{'repost of bikes.mp4':24} {'max over its 6 scenes':>22}")
    worst = 0.0
    for kind in KINDS:
        ds = [d[at[("bikes.mp4", i)], at[(reposts[kind].name, i)]] for i in range(6)]
        worst = max(worst, max(ds))
        print(f"{kind:24} {max(ds):22.3f}")
    coin = d[at[("coin_pen_static_cam.mov", 0)], at[("coin_pen_reencoded.avi", 0)]]
    print(f"{'coin_pen re-encoded segment':24} {coin:22.3f}")
    cross = sorted((d[a, b], names[a], names[b]) for a, b in itertools.combinations(range(len(names)), 2)
                   if origin(names[a][0]) != origin(names[b][0]))
    print("closest distinct videos:")
    for dist, a, b in cross[:4]:
        print(f"  {dist:.3f}  {a[0]}#{a[1]}  {b[0]}#{b[1]}")
    print(f"margin: copies <= {max(worst, coin):.3f} < threshold {cfg.dedup.near_threshold} < distinct >= "
          f"{cross[0][0]:.3f}")
    print(f"cost: hashes {hash_s:.2f} s over {len(names)} scenes vs the analysis pass {analysis_s:.2f} s "
          f"(+{100 * hash_s / analysis_s:.1f}%)")


def clustered(rows: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around `clusters` random centres (spread 0.5): a stand-in for CLIP's clustered embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    out = np.empty((rows, dim), np.float32)
    for lo in range(0, rows, 100_000):
        hi = min(rows, lo + 100_000)
        out[lo:hi] = centres[rng.integers(0, clusters, hi - lo)] + 0.5 * rng.standard_normal((hi - lo, dim))
        out[lo:hi] /= np.linalg.norm(out[lo:hi], axis=1, keepdims=True)
    return out


def index(args) -> None:
    import lance
    import pyarrow as pa

    from curate.store import vectors
    from curate.store.lance_store import LanceStore

    e = clustered(args.rows, args.dim, args.clusters)
    queries = np.random.default_rng(1).choice(args.rows, args.queries, replace=False)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        store = LanceStore(tmp)
        t = time.perf_counter()
        for lo in range(0, args.rows, 100_000):
            hi = min(args.rows, lo + 100_000)
            table = pa.table({"clip_id": [f"c{i}" for i in range(lo, hi)], "video_id": ["v"] * (hi - lo),
                              "model": ["synthetic"] * (hi - lo),
                              "vector": pa.FixedSizeListArray.from_arrays(pa.array(e[lo:hi].reshape(-1)), args.dim)},
                             schema=vectors.embeddings_schema(args.dim))
            lance.write_dataset(table, store.table_uri(vectors.TABLE), mode="append" if lo else "create")
        write_s = time.perf_counter() - t
        ds = store.open(vectors.TABLE)
        summary = vectors.IndexSummary(rows=args.rows)
        t = time.perf_counter()
        vectors._update_index(ds, summary, vectors.INDEX_MIN_ROWS)
        build_s = time.perf_counter() - t
        ann_s, exact_s, recall = [], [], []
        for q in queries:
            t = time.perf_counter()
            got = vectors.nearest(store, e[q], k=10).column("clip_id").to_pylist()
            ann_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            sims = e @ e[q]
            top = np.argpartition(-sims, 10)[:10]
            exact_s.append(time.perf_counter() - t)
            recall.append(len({int(c[1:]) for c in got} & set(top.tolist())) / 10)
    ann, exact = statistics.median(ann_s), statistics.median(exact_s)
    print(f"== vector index: {args.rows} x {args.dim} clustered embeddings, {args.queries} queries ==")
    print(f"write {write_s:.1f} s; IVF_PQ build ({vectors._partitions(args.rows)} partitions, "
          f"{vectors._sub_vectors(args.dim)} sub-vectors) {build_s:.1f} s")
    print(f"top-10 query: index {1000 * ann:.2f} ms vs exact numpy {1000 * exact:.2f} ms (median): "
          f"{exact / ann:.1f}x faster, recall@10 {np.mean(recall):.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--clusters", type=int, default=2000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--skip-near", action="store_true")
    p.add_argument("--skip-index", action="store_true")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.skip_near:
        near(args)
    if not args.skip_index:
        index(args)


if __name__ == "__main__":
    main()
