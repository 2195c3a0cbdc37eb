"""`curate refilter`: new thresholds over stored scores, without decoding or scoring again."""

import io

import av
import lance
import pytest
from click.testing import CliRunner

import curate
from curate.cli import main


def rows(out, name, columns=None):
    return lance.dataset(str(out / f"{name}.lance")).to_table(columns=columns).to_pylist()


@pytest.fixture()
def dataset(demo_copy):
    """A private copy of the demo dataset (refilter writes new versions)."""
    return demo_copy


def test_looser_then_stricter_thresholds(dataset, tmp_path, ray_session):
    before = {c["clip_id"]: c for c in rows(dataset, "candidates")}
    dropped = [c for c in before.values() if not c["keep"]]
    assert dropped, "the demo dataset has dropped scenes"

    loose = tmp_path / "loose.yaml"  # keep everything but what is too short
    loose.write_text("profile: tiny\npolicy: {min_motion: null, max_watermark_prob: null, max_text_area: null,\n"
                     "  max_persistent_text_area: null, max_dark_fraction: null,\n"
                     "  max_blank_fraction: null, max_bright_fraction: null}\n")
    summary = curate.refilter(str(dataset), config=str(loose))
    after = {c["clip_id"]: c for c in rows(dataset, "candidates")}
    assert len(after) == len(before)  # no scene lost or duplicated
    newly = [cid for cid in after if after[cid]["keep"] and not before[cid]["keep"]]
    assert summary.newly_kept == len(newly) == summary.encoded > 0
    assert all(after[c["clip_id"]]["drop_reasons"] == ["too_short"] for c in dropped if not after[c["clip_id"]]["keep"])
    clips = lance.dataset(str(dataset / "clips.lance"))
    ids = clips.to_table(columns=["clip_id"]).column("clip_id").to_pylist()
    assert set(ids) == {cid for cid, c in after.items() if c["keep"]}
    # The newly encoded clips decode to their spans' length.
    meta = {r["clip_id"]: r for r in clips.to_table(columns=["clip_id", "num_frames"]).to_pylist()}
    for i, cid in enumerate(ids):
        if cid in newly:
            with av.open(io.BytesIO(clips.take_blobs("video", indices=[i])[0].read())) as f:
                assert sum(1 for _ in f.decode(video=0)) == meta[cid]["num_frames"]
    videos = rows(dataset, "videos")
    assert sum(v["num_clips"] for v in videos) == len(ids)
    # Time travel: the job's own version is still there, untouched.
    first_tag = next(t for t in lance.dataset(str(dataset / "clips.lance")).tags.list() if t != f"run-{summary.run_id}")
    assert lance.dataset(str(dataset / "clips.lance"), version=first_tag).count_rows() == sum(
        c["keep"] for c in before.values())

    strict = tmp_path / "strict.yaml"
    strict.write_text("profile: tiny\npolicy: {min_clip_s: 3.0}\n")
    result = CliRunner().invoke(main, ["refilter", str(dataset), "-c", str(strict)])
    assert result.exit_code == 0, result.output
    final = rows(dataset, "candidates")
    assert all(("too_short" in c["drop_reasons"]) == (c["duration_s"] < 3.0) for c in final)
    kept_ids = {r["clip_id"] for r in rows(dataset, "clips", ["clip_id"])}
    assert kept_ids == {c["clip_id"] for c in final if c["keep"]}


def test_dry_run_changes_nothing(dataset, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("profile: tiny\npolicy: {min_clip_s: 100, max_clip_s: 200}\n")
    versions = {n: lance.dataset(str(dataset / f"{n}.lance")).version for n in ("candidates", "clips")}
    summary = curate.refilter(str(dataset), config=str(cfg), dry_run=True)
    assert summary.kept == 0 and summary.newly_dropped > 0
    assert {n: lance.dataset(str(dataset / f"{n}.lance")).version for n in versions} == versions


def test_refilter_of_a_missing_dataset(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy: {min_clip_s: 1}\n")
    result = CliRunner().invoke(main, ["refilter", str(tmp_path / "none"), "-c", str(cfg)])
    assert result.exit_code == 1 and "no curated dataset" in result.output
