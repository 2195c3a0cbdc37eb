"""`curate.open`: the notebook handle on the demo dataset."""

import pytest

import curate


def test_tables_funnel_and_reasons(demo_dataset):
    out, summary = demo_dataset
    ds = curate.open(str(out))
    funnel = ds.funnel()
    assert funnel == {"videos": 7, "videos_ok": summary.videos_ok, "scenes": summary.scenes, "kept": summary.kept,
                      "clips": summary.clips, "captioned": 0}
    kept = ds.candidates(columns=["clip_id", "keep"], filter="keep = true")
    assert len(kept) == summary.kept and kept["keep"].all() and list(kept.columns) == ["clip_id", "keep"]
    reasons = ds.drop_reasons()
    assert reasons["too_short"] >= 1 and sum(reasons.values()) >= funnel["scenes"] - funnel["kept"]
    clips = ds.clips()
    assert "video" not in clips.columns and len(clips) == summary.clips
    assert ds.clip_bytes(clips["clip_id"][0])[4:8] == b"ftyp"


def test_versions_and_preview(demo_dataset):
    out, summary = demo_dataset
    at_run = curate.open(str(out), version=summary.tag)
    assert at_run.table("clips", columns=["clip_id"]).num_rows == summary.clips
    html = at_run.preview(filter="keep = false", n=3)._repr_html_()
    assert html.count("<img") == min(3, summary.scenes - summary.kept) and "data:image/jpeg;base64," in html
    with pytest.raises(ValueError, match="unknown table"):
        at_run.table("nope")
    with pytest.raises(FileNotFoundError):
        curate.open(str(out / "missing"))
