"""Duplicates on real footage: reposts of real videos land in their original's group, distinct real videos never
group, the best member stays, a later run's reposts are caught, and similarity search finds duplicates first.

The corpus: every real video of ../shared/testdata (the negatives: static cameras on one lab bench, three clips
of one animation, three of one visualiser) plus reposts of bikes.mp4 (tests/variants.py: CRF 32, 3/4 scale, 5%
crop, letterbox bars, a burned-in watermark, a remux) and the testdata's own re-encoded segment of
coin_pen_static_cam.mov. One repost (the CRF one) arrives in a second run with `dedup.on_run`.
"""

from __future__ import annotations

import os
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

import curate
from curate.cli import main
from curate.config import load_config

FAST = {"caption": {"enabled": False}, "scoring": {"safety": {"enabled": False}}}


def origin(name: str) -> str:
    """What a file is a copy of: the truth the groups are judged by."""
    if name.startswith("bikes"):
        return "bikes"
    if name.startswith("coin_pen"):
        return "coin_pen"
    return name


@pytest.fixture(scope="module")
def corpus(testdata, tmp_path_factory):
    from variants import make_variants

    root = tmp_path_factory.mktemp("dedup_corpus")
    first, later = root / "first", root / "later"
    first.mkdir()
    later.mkdir()
    real = sorted(p for p in (testdata / "real").iterdir() if p.suffix != ".json")
    for p in [*real, testdata / "videos" / "bikes.mp4"]:
        os.symlink(p, first / p.name)
    made = make_variants(testdata / "videos" / "bikes.mp4", root / "variants")
    for kind, p in made.items():
        os.symlink(p, (later if kind == "crf" else first) / p.name)
    return first, later


@pytest.fixture(scope="module")
def deduped(corpus, ray_session, tmp_path_factory):
    """Run 1 over the first corpus, `curate dedup`, then run 2 (the CRF repost) with dedup at its end."""
    first, later = corpus
    out = tmp_path_factory.mktemp("dedup_ds") / "ds"
    cfg = load_config(profile="tiny", overrides=FAST)
    run1 = curate.run([str(first)], str(out), config=cfg, progress=False)
    dedup1 = curate.dedup(str(out))
    run2 = curate.run([str(later)], str(out), config=load_config(profile="tiny", overrides={
        **FAST, "dedup": {"on_run": True}}), progress=False)
    return out, run1, dedup1, run2


def scenes(out: Path) -> list[dict]:
    files = {v["video_id"]: Path(v["uri"]).name for v in
             lance.dataset(str(out / "videos.lance")).to_table(columns=["video_id", "uri"]).to_pylist()}
    rows = lance.dataset(str(out / "candidates.lance")).to_table(columns=[
        "clip_id", "video_id", "scene_index", "duration_s", "dup_group", "duplicate_of", "keep", "drop_reasons"],
        filter="clip_id IS NOT NULL").to_pylist()
    return [dict(r, file=files[r["video_id"]]) for r in rows]


def groups(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r["dup_group"]:
            out.setdefault(r["dup_group"], []).append(r)
    return out


def test_every_repost_lands_in_the_group_of_its_original(deduped):
    out, run1, _, _ = deduped
    assert run1.videos_failed == 0
    rows = scenes(out)
    original = {r["scene_index"]: r for r in rows if r["file"] == "bikes.mp4"}
    assert len(original) == 6  # bikes.mp4's ground truth: six shots
    reposts = [r for r in rows if r["file"].startswith("bikes__")]
    assert {r["file"].split("__")[1].split(".")[0] for r in reposts} == {"crf", "scale", "crop", "letterbox",
                                                                          "watermark", "remux"}
    for r in reposts:
        assert r["dup_group"] is not None and r["dup_group"] == original[r["scene_index"]]["dup_group"], r["file"]
    coin = [r for r in rows if r["file"].startswith("coin_pen")]
    assert len(coin) == 2 and coin[0]["dup_group"] is not None and coin[0]["dup_group"] == coin[1]["dup_group"]


def test_distinct_real_videos_never_group(deduped):
    """Three clips of one animation, three of one visualiser, four lab-bench recordings from tripods: none is a
    copy of another, and no group mixes them."""
    for members in groups(scenes(deduped[0])).values():
        assert len({origin(m["file"]) for m in members}) == 1, sorted(m["file"] for m in members)


def test_each_group_keeps_its_best_member_and_drops_the_others(deduped):
    out = deduped[0]
    clips = set(lance.dataset(str(out / "clips.lance")).to_table(columns=["clip_id"]).column("clip_id").to_pylist())
    for gid, members in groups(scenes(out)).items():
        [kept] = [m for m in members if m["duplicate_of"] is None]
        assert kept["clip_id"] == gid
        for m in members:
            if m is not kept:
                assert m["duplicate_of"] == gid and "duplicate" in m["drop_reasons"] and not m["keep"]
                assert m["clip_id"] not in clips
        others_ok = [m for m in members if not set(m["drop_reasons"]) - {"duplicate"}]
        if others_ok:  # a member the other rules keep is chosen over one they drop (the watermarked repost)
            assert kept in others_ok and kept["keep"] and kept["clip_id"] in clips
    watermarked = [r for r in scenes(out) if r["file"].startswith("bikes__watermark")]
    assert all(r["duplicate_of"] for r in watermarked if r["duration_s"] > 1)


def test_a_later_runs_reposts_are_caught_at_its_end(deduped):
    out, _, _, run2 = deduped
    assert run2.dedup is not None and run2.dedup["refilter"]["newly_dropped"] > 0
    crf = [r for r in scenes(out) if r["file"].startswith("bikes__crf")]
    assert len(crf) == 6 and all(r["duplicate_of"] for r in crf)


def test_the_exact_level_finds_the_remux_and_nothing_else(deduped):
    summary = curate.dedup(str(deduped[0]), levels=["exact"], dry_run=True)
    assert summary.dry_run and summary.pairs == {"exact": 6} and summary.groups == 6
    rows = {(r["file"], r["scene_index"]): r for r in scenes(deduped[0])}
    from curate.job.dedup import exact_pairs

    table = lance.dataset(str(deduped[0] / "candidates.lance")).to_table(columns=["clip_id", "content_hash"])
    pairs = exact_pairs(table).to_pylist()
    by_id = {r["clip_id"]: r for r in rows.values()}
    assert sorted({by_id[p["a"]]["file"], by_id[p["b"]]["file"]} == {"bikes.mp4", "bikes__remux.mkv"}
                  for p in pairs) == [True] * 6


def test_partitions_find_the_groups_one_partition_finds(deduped):
    """k-means partitions of ~8 scenes (a Ray task each, two probes a scene): the same near groups as comparing
    every scene with every other."""
    out = str(deduped[0])
    whole = curate.dedup(out, levels=["near"], dry_run=True)
    split = curate.dedup(out, config=load_config(profile="tiny", overrides={"dedup": {"partition_rows": 8}}),
                         levels=["near"], dry_run=True)
    assert whole.partitions == {"near": 1} and split.partitions["near"] >= 8
    assert (split.groups, split.duplicates) == (whole.groups, whole.duplicates) and whole.marks_changed == 0


def test_the_semantic_level_pairs_each_repost_with_its_original(deduped):
    """Under `tiny` the CLIP is random, so the semantic level is off by default (a random CLIP also embeds two
    lab benches alike); still, a picture and its copies embed alike, and the level's pairs are the stored
    embeddings' cosine distances, found through the k-means partitions."""
    from curate.job.dedup import DedupSummary, _pairs
    from curate.store.lance_store import LanceStore

    out = deduped[0]
    config = load_config(profile="tiny", overrides={"dedup": {"partition_rows": 16}})
    summary = DedupSummary(str(out), [], {})
    pairs = _pairs(LanceStore(str(out)), "semantic", 0.005, config, summary, None).to_pylist()
    assert summary.partitions["semantic"] >= 4 and summary.signed["semantic"] == len(scenes(out))
    table = lance.dataset(str(out / "candidates.lance")).to_table(columns=["clip_id", "clip_embedding"])
    emb = {c: np.asarray(e) for c, e in zip(table.column("clip_id").to_pylist(),
                                           table.column("clip_embedding").to_pylist())}
    for p in pairs[:20]:
        a, b = emb[p["a"]], emb[p["b"]]
        assert abs(p["distance"] - (1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))) < 1e-4
    paired = {frozenset((p["a"], p["b"])) for p in pairs}
    rows = scenes(out)
    original = {r["scene_index"]: r["clip_id"] for r in rows if r["file"] == "bikes.mp4"}
    reposts = [r for r in rows if r["file"].startswith("bikes__") and r["duration_s"] > 1]
    assert reposts and all(frozenset((r["clip_id"], original[r["scene_index"]])) in paired for r in reposts)


def test_diff_says_why_the_reposts_went(deduped):
    from curate.store.lance_store import LanceStore
    from curate.store.versions import diff

    out, run1, dedup1, _ = deduped
    text = diff(LanceStore(str(out)), run1.tag, f"run-{dedup1.refilter['run_id']}").format()
    assert f"-{dedup1.refilter['newly_dropped']} clips" in text
    assert text.count("duplicate of ") == dedup1.refilter["newly_dropped"]


def test_like_returns_a_scenes_duplicates_first(deduped):
    from curate.explore.search import search
    from curate.store.lance_store import LanceStore

    out = deduped[0]
    store = LanceStore(str(out))
    cfg = load_config(profile="tiny")
    checked = 0
    for members in groups(scenes(out)).values():
        # the reposts of a bikes shot (a shot under a second holds one keyframe: too little for a random CLIP)
        if origin(members[0]["file"]) != "bikes" or min(m["duration_s"] for m in members) < 1:
            continue
        checked += 1
        probe = members[0]["clip_id"]
        hits = search(store, cfg, like=probe, k=len(members) - 1).column("clip_id").to_pylist()
        assert set(hits) == {m["clip_id"] for m in members} - {probe}
    assert checked == 5


def test_search_command_text_image_and_where(deduped, testdata, tmp_path):
    out = str(deduped[0])
    result = CliRunner().invoke(main, ["search", out, "--text", "a cyclist on a road", "-k", "4", "--where", "keep",
                                       "--json"])
    assert result.exit_code == 0, result.output
    import json

    hits = json.loads(result.output)
    assert len(hits) == 4 and all(h["keep"] for h in hits)
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    result = CliRunner().invoke(main, ["search", out, "--image", str(testdata / "watermark" / "clear_example.png"),
                                       "-k", "3"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 3, result.output
    result = CliRunner().invoke(main, ["search", out, "--like", "no-such-clip"])
    assert result.exit_code == 2 and "no scene 'no-such-clip'" in result.output
    result = CliRunner().invoke(main, ["search", out, "--text", "x", "--like", "y"])
    assert result.exit_code == 2 and "exactly one" in result.output


def test_dedup_command_dry_run_errors_and_a_second_pass_that_changes_nothing(deduped, tmp_path):
    out = str(deduped[0])
    runner = CliRunner()
    result = runner.invoke(main, ["dedup", out, "--dry-run", "--level", "near", "--threshold", "0.01"])
    assert result.exit_code == 0 and "dry run" in result.output and "threshold 0.01" in result.output
    result = runner.invoke(main, ["dedup", out, "--level", "exact", "--threshold", "0.1"])
    assert result.exit_code == 2 and "exactly one level" in result.output
    result = runner.invoke(main, ["dedup", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no curated dataset" in result.output
    again = curate.dedup(out)
    assert again.marks_changed == 0 and again.refilter["newly_dropped"] == again.refilter["newly_kept"] == 0


# Without Ray ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("members, kept", [
    # (clip_id, aesthetic, sharpness, duration, nsfw): the best aesthetic wins...
    ([("a", 5.0, 10.0, 3.0, 0.0), ("b", 6.0, 10.0, 3.0, 0.0)], "b"),
    # ...unless another rule drops it,
    ([("a", 5.0, 10.0, 3.0, 0.0), ("b", 6.0, 10.0, 3.0, 0.9)], "a"),
    # then sharpness, then length, then the clip id.
    ([("a", 5.0, 10.0, 3.0, 0.0), ("b", 5.0, 20.0, 3.0, 0.0)], "b"),
    ([("a", 5.0, 10.0, 4.0, 0.0), ("b", 5.0, 10.0, 3.0, 0.0)], "a"),
    ([("b", 5.0, 10.0, 3.0, 0.0), ("a", 5.0, 10.0, 3.0, 0.0)], "a"),
    # a missing score ranks last
    ([("a", None, 10.0, 3.0, 0.0), ("b", 5.0, 10.0, 3.0, 0.0)], "b"),
])
def test_the_kept_member_of_a_group(members, kept):
    from curate.job.dedup import _PAIRS, mark_groups

    scenes_t = pa.table({"clip_id": [m[0] for m in members] + ["alone"],
                         "aesthetic": pa.array([m[1] for m in members] + [9.0], pa.float32()),
                         "sharpness": [m[2] for m in members] + [1.0], "duration_s": [m[3] for m in members] + [5.0],
                         "nsfw_score": pa.array([m[4] for m in members] + [0.0], pa.float32())})
    pairs = pa.table({"a": [members[0][0]], "b": [members[1][0]], "distance": [0.01]}, schema=_PAIRS)
    marks = {r["clip_id"]: r for r in mark_groups(scenes_t, pairs, load_config()).to_pylist()}
    assert marks["alone"]["dup_group"] is None and marks["alone"]["duplicate_of"] is None
    assert marks[kept]["dup_group"] == kept and marks[kept]["duplicate_of"] is None
    other = ({m[0] for m in members} - {kept}).pop()
    assert marks[other]["duplicate_of"] == kept == marks[other]["dup_group"]


def test_near_distances_are_a_symmetric_metric_with_zero_on_the_diagonal():
    from filters.dedup import hash_bits, near_distances

    rng = np.random.default_rng(0)
    scenes_bits = [hash_bits([rng.bytes(16) for _ in range(n)]) for n in (3, 5, 5, 1)] + [hash_bits([])]
    d = near_distances(scenes_bits, chunk=4)  # chunks smaller than the samples: the same result
    assert np.allclose(d, d.T) and np.allclose(np.diag(d)[:4], 0) and np.all(d[4] == 1.0)
    assert np.allclose(d, near_distances(scenes_bits))
    assert 0.3 < d[0, 1] < 0.6  # random hashes differ by about half their bits


def test_an_older_dataset_gets_the_dedup_columns(tmp_path):
    from curate.store.lance_store import LanceStore
    from curate.store.schema import CANDIDATES, DEDUP_FIELDS

    names = {f.name for f in DEDUP_FIELDS}
    old = pa.schema([f for f in CANDIDATES if f.name not in names])
    store = LanceStore(str(tmp_path / "ds"))
    lance.write_dataset(pa.Table.from_pylist([{"clip_id": "c", "video_id": "v"}], schema=old),
                        store.table_uri("candidates"), schema=old)
    store.ensure_tables()
    ds = store.open("candidates")
    assert names <= set(ds.schema.names) and ds.to_table().to_pylist()[0]["dup_group"] is None


def test_the_vector_index_is_built_updated_and_accurate(tmp_path):
    """10 500 64-d embeddings around 300 centres (clustered, as CLIP's are): the IVF_PQ index is trained, then
    rows added and removed are followed without training again; its top-10 agrees with an exact numpy search."""
    from curate.store import vectors
    from curate.store.lance_store import LanceStore
    from curate.store.schema import CANDIDATES

    store = LanceStore(str(tmp_path / "ds"))
    store.ensure_tables()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((300, 64)).astype(np.float32)
    e = centres[rng.integers(0, 300, 10500)] + 0.5 * rng.standard_normal((10500, 64)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)

    def add(lo: int, hi: int) -> None:
        rows = [{"clip_id": f"c{i}", "video_id": "v", "aesthetic_model": "m", "clip_embedding": e[i].tolist()}
                for i in range(lo, hi)]
        lance.write_dataset(pa.Table.from_pylist(rows, schema=CANDIDATES), store.table_uri("candidates"),
                            mode="append")

    add(0, 10000)
    first = vectors.sync_index(store)
    assert first.added == first.rows == 10000 and first.trained and first.indexed
    add(10000, 10500)
    store.open("candidates").delete("clip_id IN ('c1', 'c2')")
    second = vectors.sync_index(store)
    assert (second.added, second.removed, second.rows, second.trained) == (500, 2, 10498, False)
    index = store.open(vectors.TABLE).describe_indices()[0]
    assert index.num_rows_indexed == 10498  # the new rows joined the index's delta
    recall = []
    for q in range(0, 10500, 700):
        exact = set(np.argsort(-(e @ e[q]))[:11].tolist()) - {1, 2}
        got = vectors.nearest(store, e[q], k=10).column("clip_id").to_pylist()
        recall.append(len({int(c[1:]) for c in got} & exact) / 10)
    assert np.mean(recall) >= 0.9


def test_the_notebook_and_the_report_show_the_groups(deduped, tmp_path):
    from curate.explore.report import write_report

    out = deduped[0]
    ds = curate.open(str(out))
    sizes = ds.duplicate_groups()
    assert len(sizes) >= 7 and list(sizes.values())[0] == 7  # a bikes shot: the original and its six reposts
    preview = ds.duplicates(n=2, members=3)
    assert [len(tiles) for _, tiles in preview.groups] == [4, 4]
    assert all("duplicate" not in tiles[0].label and all("duplicate" in t.label for t in tiles[1:])
               for _, tiles in preview.groups)  # the kept scene first
    same = ds.what_if()  # the dataset's own policy again: duplicates stay dropped
    assert same.newly_kept == [] and same.newly_dropped == [] and same.reasons_after["duplicate"] > 0
    probe = next(iter(sizes))
    hits = ds.search(like=probe, k=3)
    assert len(hits) == 3 and probe not in set(hits["clip_id"])
    page = write_report(str(out), tmp_path / "r.html", samples=1).read_text()
    assert 'id="duplicates"' in page and f"{len(sizes)} groups" in page
