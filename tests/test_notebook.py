"""`curate.open`: the notebook handle on the demo dataset."""

import pytest

import curate


def test_tables_funnel_and_reasons(demo_dataset):
    out, summary = demo_dataset
    ds = curate.open(str(out))
    funnel = ds.funnel()
    assert funnel == {"videos": 7, "videos_ok": summary.videos_ok, "scenes": summary.scenes, "kept": summary.kept,
                      "clips": summary.clips, "captioned": summary.captioned}
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


def test_policy_histograms_and_what_if(demo_dataset):
    from curate.explore.visuals import thresholds_on
    from filters.policy import KeepPolicy

    out, summary = demo_dataset
    ds = curate.open(str(out), version=summary.tag)
    policy = ds.policy()  # the run's stored config: the tiny profile's defaults
    assert policy == KeepPolicy.from_config(curate.load_config(profile="tiny").policy)
    assert thresholds_on(policy, "motion") == [(f"min_motion = {policy.min_motion:g}", policy.min_motion)]
    assert ds.policy(min_motion=None).min_motion is None
    with pytest.raises(ValueError, match="unknown policy field 'min_motoin'"):
        ds.policy(min_motoin=0.1)
    assert ds.histogram("motion").png[:8] == b"\x89PNG\r\n\x1a\n"
    assert ds.histograms(["watermark_prob", "duration_s"], thresholds={"max_watermark_prob": 0.2})._repr_png_()

    same = ds.what_if()  # the stored policy reproduces the stored decisions
    assert (same.kept_before, same.kept_after, same.newly_kept, same.newly_dropped) == (
        summary.kept, summary.kept, [], [])
    assert same.reasons_after == ds.drop_reasons()
    reasons = {r["clip_id"]: r["drop_reasons"] for r in ds.table("candidates", columns=["clip_id", "drop_reasons"])
               .to_pylist()}
    for field, reason in [("max_watermark_prob", "watermark"), ("min_motion", "static")]:
        loose = ds.what_if({field: None})  # a threshold off: exactly the scenes it alone dropped come back
        assert sorted(loose.newly_kept) == sorted(c for c, r in reasons.items() if r == [reason])
        assert loose.newly_dropped == [] and loose.kept_after == summary.kept + len(loose.newly_kept)
    strict = ds.what_if(min_clip_s=1000.0)
    assert strict.kept_after == 0 and len(strict.newly_dropped) == summary.kept
    assert f"-{summary.kept} newly dropped" in strict.format()


def test_animated_previews_and_captions(demo_dataset):
    import io

    from PIL import Image

    out, summary = demo_dataset
    ds = curate.open(str(out))
    grid = ds.preview_by_reason(n=2)
    titles = [title for title, _ in grid.groups]
    assert titles[0] == "kept" and len(titles) == 1 + len(ds.drop_reasons())
    for title, tiles in grid.groups:
        assert tiles and all(t.mime == "image/webp" for t in tiles)
        frames = {Image.open(io.BytesIO(t.image)).n_frames for t in tiles}
        # Kept: 8 frames decoded from the clip; dropped: the 3 stored keyframes (WebP merges identical ones).
        assert all(1 < n <= 8 for n in frames) if title == "kept" else frames <= {1, 2, 3}, (title, frames)
    assert 'src="data:image/webp;base64,' in grid._repr_html_()
    captions = ds.captions()._repr_html_()
    if ds.funnel()["captioned"] == 0:
        assert "no captions" in captions
    else:
        assert captions.count("<tr>") == min(20, ds.funnel()["captioned"])
        assert captions.count("caption-clip score") == captions.count("<tr>")  # every passed caption is scored


def test_previews_of_overlay_drops_draw_their_boxes(demo_dataset):
    """The demo's logo over a pan is dropped as `watermark`: its preview outlines the box that caused it."""
    import io

    import numpy as np
    from PIL import Image

    from curate.explore.visuals import WATERMARK_COLOR

    out, _ = demo_dataset
    ds = curate.open(str(out))
    scene = ds.candidates(columns=["clip_id", "keyframes", "watermark_box"],
                          filter="array_has_any(drop_reasons, ['watermark'])").iloc[0]
    [tile] = ds.preview(filter=f"clip_id = '{scene.clip_id}'", n=1).tiles
    drawn = np.asarray(Image.open(io.BytesIO(tile.image)).convert("RGB")).astype(int)
    raw = np.asarray(Image.open(io.BytesIO(scene.keyframes[0])).convert("RGB")).astype(int)
    h, w = drawn.shape[:2]
    x0, y0, x1, y1 = scene.watermark_box
    top_edge = drawn[int(y0 * h) + 1, int(x0 * w) + 2:int(x1 * w) - 2]
    assert np.abs(top_edge - np.array(WATERMARK_COLOR)).sum(axis=1).mean() < 90  # outlined in the box colour
    assert np.abs(drawn - raw).mean() > 0.1 and np.abs(drawn - raw)[h // 2, :w // 4].mean() < 20  # nothing else
