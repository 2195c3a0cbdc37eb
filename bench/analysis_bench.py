"""The analysis pass side by side with `ffmpeg -f null` (decode only) and PySceneDetect's own CLI.

For each file (the demo corpus, the real test videos, a generated 1080p clip): the best of N wall times of

  ours        curate's single analysis pass (decode, adaptive scene detection, samples and keyframes)
  ffmpeg      ffmpeg -v error -threads 0 -i X -f null -          (decode only, the floor)
  scenedetect scenedetect -q -i X -o TMP detect-adaptive list-scenes -s

and whether the cuts agree. Then peak resident memory of one worker process analysing the 1080p clip, beside
ffmpeg's own peak decoding it. Targets (issue 3): ours <= 1.5x ffmpeg; scenedetect >= 2x ours.

    make bench            (or: .venv/bin/python bench/analysis_bench.py [--repeat N])
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata" / "videos"
OUT = REPO / "bench" / "out"


def timed_best(repeat: int, fn):
    """(the best of `repeat` timed calls of `fn`, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def best_of(repeat: int, fn) -> float:
    return timed_best(repeat, fn)[0]


def our_pass(path: Path, gpu: bool = False) -> list[dict]:
    """Our analysis pass's scene rows (`gpu`: decoding with NVDEC, bench/throughput_bench.py --gpu)."""
    from curate.config import Config
    from curate.job.analyze import analyze_source
    from curate.video.sources import Source

    cfg = Config()
    cfg.input.decode_device = "cuda" if gpu else "cpu"
    rows = analyze_source(Source(str(path)), cfg)
    if rows[0]["video"]["status"] != "ok":
        raise RuntimeError(rows[0]["video"]["error"])
    return rows


def our_cuts(path: Path, gpu: bool = False) -> list[int]:
    """Our analysis pass's scene starts."""
    return [r["start_frame"] for r in our_pass(path, gpu)]


def ffmpeg_decode(path: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-threads", "0", "-i", str(path), "-f", "null", "-"], check=True)


def scenedetect_cli(path: Path) -> list[int]:
    exe = str(Path(sys.executable).parent / "scenedetect")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, "-q", "-i", str(path), "-o", tmp, "detect-adaptive", "list-scenes", "-s"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        csv_path = next(Path(tmp).glob("*.csv"))
        with csv_path.open() as f:
            return [int(r["Start Frame"]) - 1 for r in csv.DictReader(f)]  # the CSV counts from 1


def make_1080p(path: Path, frames: int = 150) -> Path:
    from curate.video.democorpus import encode_frames, scene_frames

    if not path.exists():
        rng = np.random.default_rng(7)
        clip = scene_frames("moving", frames // 2, 1920, 1080, rng) + scene_frames("pan", frames // 2, 1920,
                                                                                     1080, rng)
        encode_frames(path, [f[..., ::-1] for f in clip], codec="libx264", fps=30)
    return path


def peak_rss_mib(cmd: list[str]) -> float:
    """Peak resident memory (VmHWM) of a command, read from /proc while it runs.

    VmHWM belongs to the process's own address space, so unlike `ru_maxrss` it does not inherit the parent's
    high-water mark across fork and exec. It only grows, so the last reading before exit is the peak.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.002)
    return peak / 1024


def worker_peak_mib(path: Path, gpu: bool = False) -> tuple[float, float]:
    """Peak RSS (MiB) of a fresh process running our analysis, and of ffmpeg decoding the same file."""
    ours = peak_rss_mib([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                         "from analysis_bench import our_cuts; from pathlib import Path; "
                         "our_cuts(Path(sys.argv[2]), sys.argv[3] == 'gpu')",
                         str(Path(__file__).parent), str(path), "gpu" if gpu else "cpu"])
    ff = peak_rss_mib(["ffmpeg", "-v", "error", "-threads", "0", "-i", str(path), "-f", "null", "-"])
    return ours, ff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found: `make bench` installs it (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    from curate.video.democorpus import make_demo_corpus

    OUT.mkdir(parents=True, exist_ok=True)
    corpus = OUT / "corpus"
    make_demo_corpus(corpus)
    files = sorted(corpus.glob("*.*"))
    files = [f for f in files if f.suffix != ".json"] + [TESTDATA / "bikes.mp4", TESTDATA / "bigbuckbunny.mp4",
                                                         make_1080p(OUT / "moving_1080p.mp4")]
    our_cuts(files[0])  # warm up imports and OpenCV before timing

    print(f"{'file':28} {'ours s':>8} {'ffmpeg s':>9} {'scdet s':>8} {'ours/ffmpeg':>12} {'scdet/ours':>11}  cuts")
    tot = {"ours": 0.0, "ffmpeg": 0.0, "scdet": 0.0}
    per_file: dict[str, list[float]] = {"ours": [], "ffmpeg": [], "scdet": []}
    all_same = True
    for f in files:
        cuts = our_cuts(f)
        theirs = scenedetect_cli(f)
        t_ours = best_of(args.repeat, lambda f=f: our_cuts(f))
        t_ff = best_of(args.repeat, lambda f=f: ffmpeg_decode(f))
        t_sd = best_of(args.repeat, lambda f=f: scenedetect_cli(f))
        for key, value in (("ours", t_ours), ("ffmpeg", t_ff), ("scdet", t_sd)):
            tot[key] += value
            per_file[key].append(value)
        same = cuts == theirs
        all_same &= same
        print(f"{f.name:28} {t_ours:8.3f} {t_ff:9.3f} {t_sd:8.3f} {t_ours / t_ff:12.2f} {t_sd / t_ours:11.2f}  "
              f"{'same' if same else f'DIFFER ours={cuts} scenedetect={theirs}'}")
    print(f"{'TOTAL':28} {tot['ours']:8.3f} {tot['ffmpeg']:9.3f} {tot['scdet']:8.3f} "
          f"{tot['ours'] / tot['ffmpeg']:12.2f} {tot['scdet'] / tot['ours']:11.2f}  "
          f"{'all cuts agree' if all_same else 'cuts differ (see above)'}")
    # Per-call overhead (process start-up, imports, opening) as each tool's time on the 10-frame file.
    tiny = next(i for i, f in enumerate(files) if f.name == "short_mpeg4.avi")
    sd_start, ff_start = per_file["scdet"][tiny], per_file["ffmpeg"][tiny]
    n = len(files)
    print(f"per-call overhead (each tool's time on the 10-frame file): scenedetect CLI {sd_start:.3f} s, "
          f"ffmpeg {ff_start:.3f} s; with it taken off every file: ours/ffmpeg "
          f"{tot['ours'] / (tot['ffmpeg'] - n * ff_start):.2f}, "
          f"scdet/ours {(tot['scdet'] - n * sd_start) / tot['ours']:.2f}")
    ours_mib, ff_mib = worker_peak_mib(files[-1])
    print(f"peak RSS analysing {files[-1].name} (1920x1080, 150 frames): ours {ours_mib:.0f} MiB "
          f"(whole worker: Python, PyAV, OpenCV, numpy), ffmpeg {ff_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
