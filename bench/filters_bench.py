"""The filters on real footage: what they drop and what they cost (issue 11).

1. Accuracy at the default policy. Negatives: the labelled real videos of ../shared/testdata/real. Positives: the
   clean camera and animation videos among them with overlays burned in (tests/burnin.py: handles, channel names,
   logos with a word mark, textless emblems, corner bugs, tickers, subtitles, the real getty watermark; random
   corner, size and opacity; re-encoded with libx264). Prints the confusion table: for each group, how many files
   lost a scene to an overlay, text or safety reason (watermark, text, text_overlay, nsfw) and to which.
   Targets: <= 5% of clean camera/animation files dropped; >= 90% of positives caught.
2. Cost. For each real video, the analysis pass alone (best of N) against every scorer that reads its samples
   and keyframes (quality, motion, overlays, OCR, safety: the job's ScoreStage), with each scorer's share.
   Target: all scorers together add <= 35% to the analysis pass.
3. Engines. Each learned model's network call on a hot input shape (the middle sample of every real video, as its
   scorer prepares it), side by side in this process: ONNX Runtime's CPU provider against OpenVINO at f32 and
   bf16, with the largest difference of their outputs from ONNX Runtime's (filters/onnx.py).

    .venv/bin/python bench/filters_bench.py [--seed 7] [--repeat 3] [--skip-accuracy] [--skip-cost]
                                            [--device auto|cpu|cuda] [--engine auto|onnxruntime|openvino]
                                            [--precision f32|bf16] [--skip-engines]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata"
OUT = REPO / "bench" / "out"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from analysis_bench import best_of  # noqa: E402
from burnin import KINDS, OVERLAY_REASONS, clean_videos, curate_file, group_of, overlay_drops, positives  # noqa: E402


def accuracy(cfg, seed: int) -> None:
    labels = clean_videos(TESTDATA)
    table: dict[str, Counter] = defaultdict(Counter)
    files: dict[str, int] = Counter()
    t = time.perf_counter()
    for name, label in sorted(labels.items()):
        group = group_of(name, label)
        why = overlay_drops(curate_file(TESTDATA / "real" / name, cfg))
        files[group] += 1
        table[group]["dropped"] += bool(why)
        table[group].update(why)
        if why and group.startswith("clean camera"):
            print(f"  false drop: {name} ({', '.join(sorted(why))})")
    made = positives(TESTDATA, OUT / f"burnin-{seed}", seed=seed)
    missed = []
    for path, ov, background in made:
        group = f"burned-in {ov.kind}"
        why = overlay_drops(curate_file(path, cfg))
        files[group] += 1
        table[group]["dropped"] += bool(why)
        table[group].update(why)
        if not why:
            missed.append(f"{ov.label()} on {background}")
    reasons = sorted(OVERLAY_REASONS)
    print(f"\nconfusion table (files; seed {seed}; {time.perf_counter() - t:.0f} s)")
    print(f"{'group':28} {'files':>5} {'dropped':>8} {'kept':>5}  " + " ".join(f"{r:>12}" for r in reasons))
    for group in [g for g in files if not g.startswith("burned")] + [f"burned-in {k}" for k in KINDS]:
        c = table[group]
        print(f"{group:28} {files[group]:5d} {c['dropped']:8d} {files[group] - c['dropped']:5d}  "
              + " ".join(f"{c[r]:12d}" for r in reasons))
    clean = "clean camera/animation"
    pos = [g for g in files if g.startswith("burned")]
    caught = sum(table[g]["dropped"] for g in pos)
    n_pos = sum(files[g] for g in pos)
    text_pos = [g for g in pos if g != "burned-in emblem"]
    print(f"clean camera/animation files dropped: {table[clean]['dropped']}/{files[clean]} "
          f"({100 * table[clean]['dropped'] / files[clean]:.1f}%, target <= 5%)")
    print(f"positives caught: {caught}/{n_pos} ({100 * caught / n_pos:.1f}%, target >= 90%); with text: "
          f"{sum(table[g]['dropped'] for g in text_pos)}/{sum(files[g] for g in text_pos)}; textless emblems: "
          f"{table['burned-in emblem']['dropped']}/{files['burned-in emblem']}")
    print("missed:", "; ".join(missed) or "none")


def cost(cfg, repeat: int) -> None:
    from curate.job.analyze import analyze_source
    from curate.job.stages import ScoreStage
    from curate.video.sources import Source

    names = sorted(clean_videos(TESTDATA))
    warm = ScoreStage(cfg)
    warm.process(analyze_source(Source(str(TESTDATA / "real" / names[0])), cfg))  # models load once per worker
    total_a, shares = 0.0, Counter()
    print(f"\n{'file':30} {'scenes':>6} {'analysis s':>10} {'scoring s':>10} {'added':>7}")
    for name in names:
        src = Source(str(TESTDATA / "real" / name))
        rows = [r for r in analyze_source(src, cfg) if r["clip_id"] is not None]
        t_a = best_of(repeat, lambda src=src: analyze_source(src, cfg))
        per: dict[str, float] = {}
        for _ in range(repeat):  # each scorer's best time over the repeats
            stage = ScoreStage(cfg)
            stage.process([dict(r) for r in rows])
            per = {k: min(v, per.get(k, float("inf"))) for k, v in stage.seconds.items()}
        t_s = sum(per.values())
        total_a += t_a
        shares.update(per)
        print(f"{name:30} {len(rows):6d} {t_a:10.3f} {t_s:10.3f} {100 * t_s / t_a:6.1f}%")
    total_s = sum(shares.values())
    print(f"{'TOTAL':30} {'':6} {total_a:10.3f} {total_s:10.3f} {100 * total_s / total_a:6.1f}%  (target <= 35%)")
    print("each scorer's share of the analysis pass: " + ", ".join(
        f"{k} {100 * v / total_a:.1f}%" for k, v in shares.most_common()))


def engines(repeat: int = 20) -> None:
    import numpy as np

    from curate.config import Config
    from curate.job.analyze import analyze_source, decode_jpeg
    from curate.video.sources import Source
    from filters import ocr, safety
    from filters.onnx import OpenVinoModel, model, package_file

    settings = ocr.OcrSettings(engine="onnxruntime")
    det, scorer = ocr._detector_for(settings), ocr.TextScorer(settings)
    inputs: dict[str, list] = {"text detector": [], "nudenet": []}
    network = det.infer
    det.infer = lambda x: inputs["text detector"].append(x) or network(x)  # the input as the scorer prepares it
    for name in sorted(clean_videos(TESTDATA)):
        rows = [r for r in analyze_source(Source(str(TESTDATA / "real" / name)), Config()) if r["clip_id"]]
        scorer._detect(det, decode_jpeg(rows[0]["samples"][len(rows[0]["samples"]) // 2]))
        inputs["nudenet"].append(safety._letterbox(decode_jpeg(rows[0]["keyframes"][0]))[0])
    det.infer = network
    paths = {"text detector": package_file("rapidocr_onnxruntime", ocr.DET_MODEL, install=ocr.INSTALL),
             "nudenet": package_file("nudenet", safety.MODEL, install=safety.INSTALL)}
    print(f"\n{'model':14} {'engine':14} {'ms a call':>9} {'vs ORT':>7} {'max |diff|':>11}  "
          f"(median over {len(inputs['nudenet'])} real frames of {repeat} calls each, 1 thread, shapes compiled first)")
    for label, xs in inputs.items():
        runners = {"onnxruntime": model(str(paths[label]), "cpu", 1, "onnxruntime"),
                   "openvino f32": OpenVinoModel(str(paths[label]), 1, "f32"),
                   "openvino bf16": OpenVinoModel(str(paths[label]), 1, "bf16")}
        reference = [runners["onnxruntime"](x)[0] for x in xs]
        base = None
        for engine, run in runners.items():
            diff = max(float(np.abs(run(x)[0] - ref).max()) for x, ref in zip(xs, reference))  # compiles each shape
            ms = 1000 * float(np.median([best_of(1, lambda run=run, x=x: [run(x) for _ in range(repeat)]) / repeat
                                         for x in xs]))
            base = base or ms
            print(f"{label:14} {engine:14} {ms:9.1f} {base / ms:6.2f}x {diff:11.2e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7, help="seed of the burned-in positives (thresholds: seed 42)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where OCR and NSFW run (cuda: ONNX Runtime's CUDA provider, from onnxruntime-gpu)")
    ap.add_argument("--engine", choices=("auto", "onnxruntime", "openvino"), default="auto",
                    help="OCR's and NSFW's runtime (filters/onnx.py)")
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32", help="bf16: OpenVINO only")
    ap.add_argument("--skip-engines", action="store_true")
    args = ap.parse_args()
    from curate.config import load_config

    learned = {"device": args.device, "engine": args.engine, "precision": args.precision}
    cfg = load_config(overrides={"scoring": {"ocr": dict(learned), "safety": dict(learned)}})
    if not args.skip_cost:
        cost(cfg, args.repeat)
    if not args.skip_accuracy:
        accuracy(cfg, args.seed)
    if not args.skip_engines:
        engines()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
