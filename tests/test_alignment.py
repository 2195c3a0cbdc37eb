"""Caption-clip alignment: `caption_clip_score` from the aesthetic stage's CLIP, and the caption rule applied
after captioning (in the job and in refilter)."""

import json

import lance
import numpy as np
import pyarrow as pa
import pytest

import curate
from curate.config import load_config
from curate.job.stages import CaptionAlignStage, PolicyStage
from curate.store.schema import SCENE_ROW
from filters.aesthetic import AestheticScorer, spec_from_config
from filters.alignment import caption_clip_scores, caption_text


@pytest.fixture(scope="module")
def tiny_clip():
    scorer = AestheticScorer(spec_from_config(load_config(profile="tiny").scoring.aesthetic, "tiny"), device="cpu")
    scorer.setup()
    return scorer


def rows_of(name, dataset, columns):
    return lance.dataset(str(dataset / f"{name}.lance")).to_table(columns=columns).to_pylist()


def test_the_score_is_the_cosine_of_text_and_clip_embeddings(tiny_clip):
    text = tiny_clip.embed_text(["a red bicycle on a road"])[0]
    other = tiny_clip.embed_text(["a bowl of soup"])[0]
    embeddings = [(3.0 * text).tolist(), (-text).tolist(), other.tolist(), None, text.tolist()]
    scores = caption_clip_scores(tiny_clip.embed_text, ["a red bicycle on a road"] * 4 + [None], embeddings)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)  # the clip's embedding is normalised before the product
    assert scores[1] == pytest.approx(-1.0, abs=1e-5)
    assert scores[2] == pytest.approx(float(text @ other), abs=1e-5) and scores[2] < 0.999
    assert scores[3] is None and scores[4] is None  # nothing to score
    with pytest.raises(ValueError, match="another model"):
        caption_clip_scores(tiny_clip.embed_text, ["x"], [[0.1] * 7])


def test_the_short_caption_is_scored_and_the_dense_one_only_without_it():
    assert caption_text("A cyclist.", "A long paragraph.") == "A cyclist."
    assert caption_text("  ", "A long paragraph.") == "A long paragraph."
    assert caption_text(None, None) is None


def test_the_caption_rule_drops_after_captioning_and_only_captioned_scenes(tiny_clip):
    cfg = load_config(profile="tiny", overrides={"policy": {"min_caption_clip_score": 0.5}})
    align, policy = CaptionAlignStage(cfg), PolicyStage(cfg)
    close = tiny_clip.embed_text(["a dog runs on grass"])[0]
    far = -close
    base = {"keep": True, "drop_reasons": [], "duration_s": 5.0, "aesthetic_model": tiny_clip.spec.name,
            "caption": "A dog runs on grass in a park.", "caption_short": "a dog runs on grass"}
    rows = [{**base, "clip_id": "match", "caption_status": "ok", "clip_embedding": close.tolist()},
            {**base, "clip_id": "mismatch", "caption_status": "ok", "clip_embedding": far.tolist()},
            {**base, "clip_id": "failed", "caption_status": "failed", "clip_embedding": far.tolist()},
            {**base, "clip_id": "dropped", "keep": False, "drop_reasons": ["static"], "caption_status": None,
             "clip_embedding": far.tolist(), "motion": 0.0},  # the policy decides again, from the scores
            {**base, "clip_id": "other-model", "caption_status": "ok", "clip_embedding": far.tolist(),
             "aesthetic_model": "ViT-L-14/openai+improved:x.pth"}]
    names = dict.fromkeys([*align.input_columns, *policy.input_columns, "drop_reasons"])
    table = pa.Table.from_pylist(rows, schema=pa.schema([SCENE_ROW.field(n) for n in names]))
    out = policy(align(table)).to_pylist()
    by_id = {r["clip_id"]: r for r in out}
    assert by_id["match"]["caption_clip_score"] == pytest.approx(1.0, abs=1e-5) and by_id["match"]["keep"]
    assert by_id["mismatch"]["caption_clip_score"] == pytest.approx(-1.0, abs=1e-5)
    assert by_id["mismatch"]["keep"] is False and by_id["mismatch"]["drop_reasons"] == ["caption_mismatch"]
    assert by_id["failed"]["caption_clip_score"] is None and by_id["failed"]["keep"]  # no caption, no verdict
    assert by_id["dropped"]["caption_clip_score"] is None and by_id["dropped"]["drop_reasons"] == ["static"]
    assert by_id["other-model"]["caption_clip_score"] is None and by_id["other-model"]["keep"]


def test_the_demo_stores_each_captions_score(demo_dataset, tiny_clip):
    """Every clip whose caption passed has the cosine of its short caption and its embedding, in clips and in
    candidates; a failed caption has none."""
    out, _ = demo_dataset
    clips = rows_of("clips", out, ["clip_id", "caption_short", "caption", "caption_status", "caption_clip_score"])
    cands = {r["clip_id"]: r for r in rows_of("candidates", out, ["clip_id", "clip_embedding", "caption_clip_score"])}
    assert clips and any(c["caption_status"] == "ok" for c in clips)
    for c in clips:
        stored = cands[c["clip_id"]]["caption_clip_score"]
        assert stored == c["caption_clip_score"]
        if c["caption_status"] != "ok":
            assert stored is None
            continue
        emb = np.asarray(cands[c["clip_id"]]["clip_embedding"], np.float32)
        expected = float(tiny_clip.embed_text([c["caption_short"]])[0] @ (emb / np.linalg.norm(emb)))
        assert stored == pytest.approx(expected, abs=1e-4)
    # no drop for it under tiny: the rule is off with random weights
    reasons = rows_of("candidates", out, ["drop_reasons"])
    assert not any("caption_mismatch" in (r["drop_reasons"] or []) for r in reasons)


def test_refilter_applies_the_caption_rule_to_stored_and_to_new_captions(demo_copy, tmp_path, ray_session):
    """With an unreachable threshold, refilter drops every kept clip whose caption was scored (stored scores);
    the scenes it newly keeps are captioned, scored and dropped by the same rule before encoding, and recorded
    as `caption_mismatch`, not as failed encodes."""
    before = {r["clip_id"]: r for r in rows_of("candidates", demo_copy, ["clip_id", "keep", "caption_clip_score"])}
    scored = {cid for cid, r in before.items() if r["keep"] and r["caption_clip_score"] is not None}
    newly = {cid for cid, r in before.items() if not r["keep"]}
    assert scored and newly
    config = tmp_path / "c.yaml"
    config.write_text("profile: tiny\npolicy: {min_clip_s: 0.0, min_motion: null, max_watermark_prob: null,\n"
                      "  max_text_area: null, max_persistent_text_area: null, max_dark_fraction: null,\n"
                      "  max_blank_fraction: null, max_bright_fraction: null, min_caption_clip_score: 0.999}\n")
    summary = curate.refilter(str(demo_copy), config=str(config))
    after = {r["clip_id"]: r for r in rows_of("candidates", demo_copy,
                                               ["clip_id", "keep", "drop_reasons", "caption_clip_score"])}
    assert all(after[c]["drop_reasons"] == ["caption_mismatch"] and not after[c]["keep"] for c in scored)
    captioned = {c for c in newly if after[c]["caption_clip_score"] is not None}
    assert captioned, "some newly kept scene got a caption that passed its checks"
    assert all(after[c]["drop_reasons"] == ["caption_mismatch"] and not after[c]["keep"] for c in captioned)
    assert summary.encode_failed == 0 and summary.caption_dropped == len(captioned)
    clip_ids = {r["clip_id"] for r in rows_of("clips", demo_copy, ["clip_id"])}
    assert clip_ids == {c for c, r in after.items() if r["keep"]} and not clip_ids & (scored | captioned)
    assert sum(v["num_clips"] for v in rows_of("videos", demo_copy, ["num_clips"])) == len(clip_ids)
    run = rows_of("runs", demo_copy, ["run_id", "kept"])
    assert next(r for r in run if r["run_id"] == summary.run_id)["kept"] == len(clip_ids)
    assert json.loads(json.dumps(summary.to_dict()))["caption_dropped"] == len(captioned)
