"""Deduplication and similarity search (issue 15): how well the near level separates copies from distinct real
videos, what the signatures cost, and the vector index against exact search.

1. Near duplicates on real footage. Every real video of ../shared/testdata and reposts of bikes.mp4
   (tests/variants.py: CRF 32, 3/4 scale, 5% crop, letterbox, burned-in watermark, remux) through the analysis
   pass and the score stage's perceptual hashes; prints, per kind of repost, the largest distance of a repost's
   scene to its original's, the testdata's own re-encoded segment (coin_pen), and the closest pairs of distinct
   videos: the threshold must sit between the two. Also the hashes' cost against the analysis pass.
2. Grouping at scale. `--group-rows` synthetic scenes of `--samples` random sample hashes each in a real
   candidates table, a tenth of them copies of another scene with 4% of every hash's bits flipped (about what a
   re-encode does): `curate dedup --level near --dry-run` with its Ray partitions, against the planted pairs
   (recall, false pairs), with its wall time and the driver's peak memory.
3. Vector search at scale. `--rows` synthetic embeddings (clustered, as CLIP's are: `--clusters` centres plus
   noise) in a Lance table with an IVF_PQ index (curate/store/vectors.py): the index build, then the top-10 of
   `--queries` queries against an exact numpy search (one matrix product over every vector) on the same vectors,
   side by side: median query time, speed-up and recall@10.

    .venv/bin/python bench/dedup_bench.py [--rows 1000000] [--dim 512] [--queries 200] [--group-rows 100000]
                                          [--skip-near] [--skip-group] [--skip-index]
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
    from curate.job.analyze import analyze_source, decode_jpeg
    from curate.job.stages import _sample_hashes
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
            box = quality_scores([decode_jpeg(j) for j in r["samples"]])["content_box"]  # the quality scorer's
            t = time.perf_counter()  # what the score stage adds: every sample's JPEG decoded and hashed
            bits.append(hash_bits(_sample_hashes(r["samples"], box)))
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
    print(f"cost: the hashes (every sample's JPEG decoded to grey at half size, then hashed) {hash_s:.2f} s over "
          f"{len(names)} scenes vs the analysis pass {analysis_s:.2f} s "
          f"(+{100 * hash_s / analysis_s:.1f}%)")


def grouping(args) -> None:
    import resource

    import lance
    import pyarrow as pa

    from curate.config import load_config
    from curate.job.dedup import DedupSummary, _pairs
    from curate.store.lance_store import LanceStore
    from curate.store.schema import CANDIDATES

    rng = np.random.default_rng(2)
    n, s = args.group_rows, args.samples
    hashes = rng.integers(0, 256, (n, s, 16), dtype=np.uint8)
    copies = rng.choice(n, n // 10, replace=False)
    sources = rng.choice(np.setdiff1d(np.arange(n), copies), len(copies), replace=False)
    source_bits = np.unpackbits(hashes[sources], axis=-1)
    hashes[copies] = np.packbits((source_bits ^ (rng.random(source_bits.shape) < 0.04)).astype(np.uint8), axis=-1)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        store = LanceStore(tmp)
        store.ensure_tables()
        for lo in range(0, n, 50_000):
            hi = min(n, lo + 50_000)
            given = {"clip_id": [f"c{i:07d}" for i in range(lo, hi)], "video_id": [f"v{i}" for i in range(lo, hi)],
                     "duration_s": np.full(hi - lo, 5.0), "keep": np.ones(hi - lo, bool),
                     "sample_hashes": [[bytes(h) for h in scene] for scene in hashes[lo:hi]]}
            full = pa.table({f.name: given[f.name] if f.name in given else pa.nulls(hi - lo, f.type)
                             for f in CANDIDATES}, schema=CANDIDATES)
            lance.write_dataset(full, store.table_uri("candidates"), mode="append")
        cfg = load_config(profile="tiny", overrides={"dedup": {"probes": args.probes}} if args.probes else None)
        summary = DedupSummary(tmp, ["near"], {})
        t = time.perf_counter()
        found = _pairs(store, "near", cfg.dedup.near_threshold, cfg, summary, None).to_pylist()
        wall = time.perf_counter() - t
    planted = {tuple(sorted((f"c{a:07d}", f"c{b:07d}"))) for a, b in zip(copies, sources)}
    got = {tuple(sorted((p["a"], p["b"]))) for p in found}
    print(f"== near grouping: {n} scenes x {s} sample hashes, {len(planted)} planted copies, "
          f"{cfg.dedup.probes} probes ==")
    print(f"near pairs (k-means, then a Ray task per partition): {wall:.1f} s wall, {summary.partitions['near']} "
          f"partitions, {len(got)} pairs; recall {len(planted & got) / len(planted):.3f}, "
          f"pairs not planted {len(got - planted)}; driver peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


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
    p.add_argument("--group-rows", type=int, default=100_000)
    p.add_argument("--samples", type=int, default=10, help="sample hashes per synthetic scene")
    p.add_argument("--probes", type=int, default=None, help="partitions a scene is compared in (dedup.probes)")
    p.add_argument("--skip-near", action="store_true")
    p.add_argument("--skip-group", action="store_true")
    p.add_argument("--skip-index", action="store_true")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.skip_near:
        near(args)
    if not args.skip_group:
        grouping(args)
    if not args.skip_index:
        index(args)


if __name__ == "__main__":
    main()
