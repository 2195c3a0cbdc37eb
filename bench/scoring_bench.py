"""What scoring costs, side by side in one script.

1. The analysis pass alone vs the analysis pass followed by the weight-free scorers (quality, motion, overlays)
   on the same scenes, for the demo corpus and the real test videos. Target (issue 4): scoring adds <= 30%.
2. CLIP scoring throughput with ViT-B-32 (random weights: none can be downloaded here; the cost is the same) on
   CPU: our AestheticScorer (JPEG decode, preprocess, encode, head) vs the bare model forward on ready tensors.

    .venv/bin/python bench/scoring_bench.py [--repeat N] [--clips N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from analysis_bench import OUT, TESTDATA, best_of, make_1080p  # noqa: E402


def analysis(path: Path) -> list[dict]:
    from curate.config import Config
    from curate.job.analyze import analyze_source
    from curate.video.sources import Source

    return analyze_source(Source(str(path)), Config())


def score(rows: list[dict]) -> None:
    from curate.config import Config
    from curate.job.stages import ScoreStage

    ScoreStage(Config()).process([dict(r) for r in rows])


def clip_throughput(n_clips: int, repeat: int) -> tuple[float, float]:
    """Clips/s of our scorer and of the bare forward, 3 keyframes per clip, ViT-B-32 on CPU."""
    import cv2
    import torch
    from PIL import Image

    from curate.common.compat import ensure_torchvision
    from filters.aesthetic import AestheticScorer, AestheticSpec, build_head

    ensure_torchvision()
    import open_clip

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    scorer = AestheticScorer(AestheticSpec(clip_model="ViT-B-32", head="linear"), device="cpu")
    scorer.model, scorer.preprocess, scorer.head = model.eval(), preprocess, build_head("linear", 512).eval()
    rows = [r for f in sorted((OUT / "corpus").glob("*.mp4")) for r in analysis(f)]
    keyframes = [r["keyframes"] for r in rows]
    clips = [keyframes[i % len(keyframes)] for i in range(n_clips)]

    def ours():
        from curate.job.analyze import decode_jpeg

        scorer([[Image.fromarray(cv2.cvtColor(decode_jpeg(k), cv2.COLOR_BGR2RGB)) for k in ks] for ks in clips])

    images = [Image.fromarray(np.zeros((224, 224, 3), np.uint8))] * sum(len(c) for c in clips)
    batch = torch.stack([preprocess(im) for im in images])

    def bare():
        with torch.inference_mode():
            model.encode_image(batch)

    ours()  # warm up
    return n_clips / best_of(repeat, ours), n_clips / best_of(repeat, bare)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clips", type=int, default=32)
    args = ap.parse_args()
    from curate.video.democorpus import make_demo_corpus

    make_demo_corpus(OUT / "corpus")
    files = sorted(f for f in (OUT / "corpus").glob("*.*") if f.suffix != ".json")
    files += [TESTDATA / "bikes.mp4", TESTDATA / "bigbuckbunny.mp4", make_1080p(OUT / "moving_1080p.mp4")]
    score(analysis(files[0]))  # warm up imports

    print(f"{'file':28} {'analysis s':>11} {'scoring s':>10} {'added':>7}")
    tot_a = tot_s = 0.0
    for f in files:
        rows = analysis(f)
        t_a = best_of(args.repeat, lambda f=f: analysis(f))
        t_s = best_of(args.repeat, lambda rows=rows: score(rows))
        tot_a, tot_s = tot_a + t_a, tot_s + t_s
        print(f"{f.name:28} {t_a:11.3f} {t_s:10.3f} {100 * t_s / t_a:6.1f}%")
    print(f"{'TOTAL':28} {tot_a:11.3f} {tot_s:10.3f} {100 * tot_s / tot_a:6.1f}%  (quality + motion + overlays)")

    ours, bare = clip_throughput(args.clips, args.repeat)
    print(f"CLIP ViT-B-32 on CPU, 3 keyframes per clip: AestheticScorer {ours:.1f} clips/s, bare forward "
          f"{bare:.1f} clips/s (ratio {ours / bare:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
