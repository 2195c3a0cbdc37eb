"""The aesthetic scorer: real LAION heads against their reference embeddings, and the tiny profile."""

import numpy as np
import pytest
import torch
from PIL import Image

from filters.aesthetic import AestheticScorer, AestheticSpec, WeightsError, load_head

KNOWN_IMPROVED = [1.66, 2.36, 3.07, 3.67, 4.24, 4.70, 5.07, 5.37, 5.58, 5.75]  # testdata/README.md


def reference_embeddings(testdata, tower):
    d = testdata / "aesthetic" / "laion-aesthetic-predictor" / f"{tower}_embeddings"
    e = np.concatenate([np.load(d / f"rating{i}.npy") for i in range(10)]).astype(np.float32)
    return torch.from_numpy(e / np.linalg.norm(e, axis=1, keepdims=True))


def test_improved_head_reproduces_the_known_figures(testdata):
    head = load_head("improved", str(testdata / "aesthetic" / "improved-aesthetic-predictor" /
                                     "sac+logos+ava1-l14-linearMSE.pth"), 768)
    with torch.no_grad():
        scores = head(reference_embeddings(testdata, "vit_l_14"))[:, 0].numpy()
    assert np.all(np.diff(scores) > 0)
    assert scores == pytest.approx(KNOWN_IMPROVED, abs=0.01)


@pytest.mark.parametrize("tower, file, width", [("vit_l_14", "sa_0_4_vit_l_14_linear.pth", 768),
                                                ("vit_b_32", "sa_0_4_vit_b_32_linear.pth", 512)])
def test_linear_heads_rank_the_ratings(testdata, tower, file, width):
    head = load_head("linear", str(testdata / "aesthetic" / "laion-aesthetic-predictor" / file), width)
    with torch.no_grad():
        scores = head(reference_embeddings(testdata, tower))[:, 0].numpy()
    assert np.all(np.diff(scores) > 0)


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match=r"aesthetic head weights \(improved\) not found: .*nope.pth.*head_path"):
        load_head("improved", str(tmp_path / "nope.pth"), 768)
    scorer = AestheticScorer(AestheticSpec(clip_model="ViT-B-32", clip_pretrained="openai", head="linear",
                                           head_path=str(tmp_path / "nope.pth")))
    with pytest.raises(WeightsError, match="not found: .*nope.pth"):  # before any CLIP download is tried
        scorer.setup()


def test_clip_weights_that_cannot_be_had_are_a_clear_error(testdata, tmp_path):
    head = testdata / "aesthetic" / "laion-aesthetic-predictor" / "sa_0_4_vit_b_32_linear.pth"
    offline = AestheticScorer(AestheticSpec(clip_model="ViT-B-32", clip_pretrained="openai", head="linear",
                                            head_path=str(head)))
    with pytest.raises(WeightsError, match="cannot load open_clip ViT-B-32 weights 'openai'.*--profile tiny"):
        offline.setup()  # HF_HUB_OFFLINE=1 (conftest): no network here
    missing = AestheticScorer(AestheticSpec(clip_model="ViT-B-32", clip_pretrained=str(tmp_path / "clip.bin"),
                                            head="linear", head_path=str(head)))
    with pytest.raises(WeightsError, match="open_clip checkpoint not found"):
        missing.setup()


def test_tiny_profile_scores_clips_and_names_itself():
    scorer = AestheticScorer(AestheticSpec(tiny=True, head="improved"))
    rng = np.random.default_rng(0)
    clips = [[Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)) for _ in range(n)]
             for n in (3, 1, 0)]
    scores, embs = scorer(clips)
    assert scores[2] is None and embs[2] is None
    assert all(np.isfinite(scores[:2]))
    assert len(embs[0]) == 64 and np.linalg.norm(embs[0]) == pytest.approx(1.0, abs=1e-5)
    again, _ = AestheticScorer(AestheticSpec(tiny=True, head="improved"))(clips)  # same seed: same model
    assert again[:2] == pytest.approx(scores[:2], abs=1e-5)
    assert "tiny" in scorer.spec.name
    low, _ = AestheticScorer(AestheticSpec(tiny=True, head="improved", reduce="min"))(clips[:1])
    assert low[0] <= scores[0] + 1e-6


def test_the_jobs_preflight_checks_weights_without_importing_torch(testdata, tmp_path):
    """The driver checks a run's weights before Ray starts; importing torch there cost every job 1.3 s of its
    start. A missing head is still the clear error, and the real check still runs."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from curate.config import load_config\n"
            "from curate.job.models import preflight\n"
            "for head in sys.argv[1:]:\n"
            "    cfg = load_config(overrides={'caption': {'enabled': False}, 'scoring': {'aesthetic': {\n"
            "        'clip_pretrained': head, 'head_path': head, 'head': 'linear'}}})\n"
            "    try:\n"
            "        preflight(cfg)\n"
            "        print('ok')\n"
            "    except FileNotFoundError as e:\n"
            "        print(type(e).__name__, e)\n"
            "print('torch imported:', 'torch' in sys.modules)\n")
    head = testdata / "aesthetic" / "laion-aesthetic-predictor" / "sa_0_4_vit_b_32_linear.pth"
    out = subprocess.run([sys.executable, "-c", code, str(head), str(tmp_path / "nope.pth")], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    assert out[0] == "ok"
    assert out[1].startswith("WeightsError aesthetic head weights (linear) not found") and "nope.pth" in out[1]
    assert out[-1] == "torch imported: False"
