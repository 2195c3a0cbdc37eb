"""The rewrite pass (caption.rewrite): a text LLM turns each passed caption into a short and a dense training
caption through the caption backends, stored beside the original."""

import json

import lance
import pyarrow as pa
import pytest

from captioner.prompts import get_prompt
from captioner.rewrite import annotation_text
from captioner.tiny import TINY_NAME
from curate.config import load_config
from curate.job.stages import RewriteStage
from curate.store.schema import SCENE_ROW

CAPTION = {"short_caption": "A cyclist crosses a square.", "dense_caption": "A cyclist in a red jacket rides "
           "across a paved square from left to right while pigeons scatter.", "main_subject": "cyclist",
           "background": "paved square", "camera_motion": "static", "style": "live action", "lighting": "daylight"}


def test_the_annotation_is_every_field_as_a_line():
    text = annotation_text(json.dumps({**CAPTION, "lighting": ""}))
    assert text.splitlines()[0] == "short caption: A cyclist crosses a square."
    assert "camera motion: static" in text and "lighting" not in text  # empty fields are left out


def test_rewrite_prompts_and_caption_prompts_are_kept_apart():
    assert get_prompt("rewrite-v1", input="text").fields == ("short_caption", "dense_caption")
    with pytest.raises(ValueError, match="unknown caption prompt"):
        get_prompt("rewrite-v1")
    with pytest.raises(ValueError, match="unknown rewrite prompt"):
        get_prompt("dense-v1", input="text")


def test_the_tiny_model_rewrites_passed_captions_only():
    """Text requests through the real transformers backend, held to the rewrite prompt's schema: every passed
    caption gets a rewrite with both fields (random text under tiny), recorded with its model and prompt."""
    cfg = load_config(profile="tiny", overrides={"caption": {"rewrite": {"enabled": True}}})
    stage = RewriteStage(cfg)
    rows = [{"clip_id": f"c{i}", "keep": True, "caption_status": "ok", "caption_json": json.dumps(CAPTION)}
            for i in range(3)]
    rows += [{"clip_id": "failed", "keep": True, "caption_status": "failed", "caption_json": json.dumps(CAPTION)},
             {"clip_id": "dropped", "keep": False, "caption_status": None, "caption_json": None}]
    table = pa.Table.from_pylist(rows, schema=pa.schema([SCENE_ROW.field(c) for c in stage.input_columns]))
    out = {r["clip_id"]: r for r in stage(table).to_pylist()}
    for i in range(3):
        r = out[f"c{i}"]
        assert r["rewrite_status"] in ("ok", "failed") and r["rewrite_prompt_id"] == "rewrite-v1"
        assert r["rewrite_model"].startswith(TINY_NAME)
        if r["rewrite_status"] == "ok":
            assert r["rewrite_short"] and len(r["rewrite_dense"].split()) >= cfg.caption.min_words
        else:  # content checks may reject random text, never its syntax
            assert r["rewrite_short"] is None and not r["rewrite_error"].startswith(("malformed", "missing", "trunc"))
    assert any(out[f"c{i}"]["rewrite_status"] == "ok" for i in range(3))
    for cid in ("failed", "dropped"):
        assert out[cid].get("rewrite_status") is None and out[cid].get("rewrite_short") is None


def test_a_job_with_rewrite_stores_it_beside_the_caption(demo_corpus, tmp_path, ray_session):
    import curate

    out = tmp_path / "ds"
    video = sorted(p for p in demo_corpus.iterdir() if p.suffix == ".mp4")[0]
    cfg = load_config(profile="tiny", overrides={"caption": {"rewrite": {"enabled": True}}})
    summary = curate.run([str(video)], str(out), config=cfg, progress=False)
    assert summary.kept > 0
    clips = lance.dataset(str(out / "clips.lance")).to_table(columns=[
        "caption", "caption_status", "rewrite_short", "rewrite_dense", "rewrite_status", "rewrite_model",
        "rewrite_prompt_id"]).to_pylist()
    assert clips
    for c in clips:
        assert (c["rewrite_status"] is not None) == (c["caption_status"] == "ok")
        if c["rewrite_status"] == "ok":
            assert c["rewrite_dense"] and c["rewrite_short"] and c["rewrite_prompt_id"] == "rewrite-v1"
            assert c["caption"] and c["rewrite_dense"] != c["caption"]  # beside the original, not over it
    # the trainer reads the rewrite, or the original where the rewrite failed
    import numpy as np

    from train.data import ClipSelection, DataConfig

    stored = {r["clip_id"]: r for r in lance.dataset(str(out / "clips.lance")).to_table(
        columns=["clip_id", "caption", "rewrite_dense", "rewrite_status"]).to_pylist()}
    selection = ClipSelection(DataConfig(dataset=str(out), caption_field="rewrite_dense", caption_dropout=0.0))
    rng = np.random.default_rng(0)
    for row in selection.rows:
        s = stored[row["clip_id"]]
        expected = s["rewrite_dense"] if s["rewrite_status"] == "ok" else s["caption"] or ""
        assert selection.caption(row, rng) == expected
