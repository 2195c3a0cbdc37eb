"""Throughput (issue 14): the analysis pass against ffmpeg and PySceneDetect on long inputs, and the whole job
against its floor, with Ray's share apart.

Inputs: generated long files (--minutes x --heights; ffmpeg's lavfi sources testsrc2, gradients, cellauto and SMPTE
bars under a hue sweep, 15 s each in turn, libx264 veryfast CRF 23: a hard cut every 450 frames is the ground
truth), and a corpus of the real files in ../shared/testdata (videos/ and real/).

1. Analysis pass (in-process, tiny profile: decode, cuts, samples, keyframes) against `ffmpeg -f null`
   (decode only, the floor) and `scenedetect detect-adaptive` (PySceneDetect's CLI), best of --repeat; the cuts
   against the CLI's and the truth; peak RSS of a fresh process running ours against ffmpeg's.
2. The whole job, captions off (tiny profile; a fresh local Ray per job, its start-up inside the wall time), on
   the corpus and on each long file: wall time against the floor = ffmpeg decode-only of every input + an
   ffmpeg/libx264 encode of every clip the job kept at the job's own settings (its clips' size and rate, CRF,
   preset, threads, mbtree off), each measured here in the same run. The job's own split (the run summary's
   `timings` and `stage_busy_s`: Ray start, execution, the driver's commits, closing; each stage's busy time)
   and the peak RSS per kind of worker. Then `encode.mode: copy`, whose floor is decode-only. The job's and the
   floor's CPU-seconds, machine-wide (/proc/stat, so Ray's own processes count), tell work from waiting: on a
   machine whose cores the job keeps busy, its wall follows its CPU. `--copies K` adds a job on K copies of the
   corpus and prints what the extra videos cost against their floor: a job's fixed costs cancel out, leaving the
   rate a large corpus runs at.

`--gpu` (a machine with an NVIDIA GPU): the analysis pass decodes with NVDEC, and the job's analysis and encode
stages get half a GPU each, so they decode with NVDEC and encode with NVENC (curate/video/gpu.py; the floor's
ffmpeg runs stay on the CPU codecs, the peer being the CPU job's). Without a GPU it says why and falls back.

    make bench     (or: .venv/bin/python bench/throughput_bench.py [--minutes 1 4] [--heights 720 1080]
                                                                   [--repeat 2] [--skip-analysis] [--skip-job]
                                                                   [--gpu] [--no-scorers]
                                                                   [--corpus-only] [--copies K])
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata"
OUT = REPO / "bench" / "out" / "throughput"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis_bench import best_of, ffmpeg_decode, our_cuts, scenedetect_cli, worker_peak_mib  # noqa: E402
from memory_bench import WorkerMemory  # noqa: E402

SEGMENT_S = 15
SOURCES = ("testsrc2", "gradients=speed=0.02:n=4", "cellauto=rule=110", "smptehdbars")
VIDEO_EXTENSIONS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".ogv"}


def make_long(minutes: int, height: int, fps: int = 30) -> tuple[Path, list[int]]:
    """A long H.264 file with a hard cut every SEGMENT_S seconds, and its scene starts (frame indices)."""
    width = height * 16 // 9
    path = OUT / f"long_{minutes}m_{height}p.mp4"
    segments = minutes * 60 // SEGMENT_S
    truth = [k * SEGMENT_S * fps for k in range(segments)]
    if path.exists():
        return path, truth
    OUT.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for src in SOURCES:
        name, _, opts = src.partition("=")
        cmd += ["-f", "lavfi", "-i", f"{name}=s={width}x{height}:r={fps}" + (f":{opts}" if opts else "")]
    parts = []
    for k in range(segments):  # each source resumes where its previous segment ended
        i, rep = k % len(SOURCES), k // len(SOURCES)
        hue = ",hue=H=2*PI*t/15" if SOURCES[i] == "smptehdbars" else ""
        parts.append(f"[{i}]trim=start={rep * SEGMENT_S}:duration={SEGMENT_S},setpts=PTS-STARTPTS{hue}[s{k}]")
    graph = ";".join(parts) + ";" + "".join(f"[s{k}]" for k in range(segments))
    graph += f"concat=n={segments}:v=1,format=yuv420p[v]"
    tmp = path.with_suffix(".part.mp4")
    subprocess.run([*cmd, "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "23", str(tmp)], check=True)
    tmp.rename(path)
    return path, truth


def real_corpus() -> list[Path]:
    files = [*sorted((TESTDATA / "videos").iterdir()), *sorted((TESTDATA / "real").iterdir())]
    return [f for f in files if f.suffix.lower() in VIDEO_EXTENSIONS]


def analysis(longs: list[tuple[Path, list[int]]], repeat: int, gpu: bool) -> None:
    print(f"\n1. analysis pass (best of {repeat}{'; NVDEC' if gpu else ''})")
    print(f"{'file':22} {'ours s':>7} {'ffmpeg s':>9} {'scdet s':>8} {'ours/ffmpeg':>12} {'scdet/ours':>11}"
          f" {'RSS ours/ffmpeg MiB':>20}  cuts")
    for path, truth in longs:
        cuts, theirs = our_cuts(path, gpu), scenedetect_cli(path)
        t_ours = best_of(repeat, lambda p=path: our_cuts(p, gpu))
        t_ff = best_of(repeat, lambda p=path: ffmpeg_decode(p))
        t_sd = best_of(1, lambda p=path: scenedetect_cli(p))
        ours_mib, ff_mib = worker_peak_mib(path, gpu)
        agree = ("= CLI = truth" if cuts == theirs == truth else
                 f"ours {'=' if cuts == truth else '!='} truth, CLI {'=' if theirs == truth else '!='} truth "
                 f"(ours {cuts}, CLI {theirs})")
        print(f"{path.name:22} {t_ours:7.2f} {t_ff:9.2f} {t_sd:8.2f} {t_ours / t_ff:12.2f} {t_sd / t_ours:11.2f}"
              f" {ours_mib:9.0f}/{ff_mib:<10.0f}  {agree}")


NO_SCORERS = {"aesthetic": {"enabled": False}, "ocr": {"enabled": False}, "safety": {"enabled": False},
              "quality": False, "motion": False, "watermark": False}


def job_config(mode: str, gpu: bool = False, scorers: bool = True):
    """Captions off; `scorers` False also turns every scorer off (what is left: decode, cuts, samples, encode and
    Ray), which tells the scorers' share of the job from the pipeline's own."""
    from curate.config import load_config

    stage_gpus = {"resources": {"analyze": {"num_gpus": 0.5}, "encode": {"num_gpus": 0.5}}} if gpu else {}
    return load_config(overrides={"caption": {"enabled": False}, "encode": {"mode": mode}, **stage_gpus,
                                  **({} if scorers else {"scoring": NO_SCORERS})})


def run_job(name: str, inputs: list[Path], mode: str, gpu: bool, scorers: bool = True):
    """One job on a fresh local Ray: (summary, wall s, peak MiB per kind of worker, clips table)."""
    import lance
    import ray

    import curate

    out = OUT / f"ds-{name}-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    with WorkerMemory() as mem:
        summary = curate.run([str(p) for p in inputs], str(out), config=job_config(mode, gpu, scorers), profile="tiny",
                             progress=False)
    wall = time.perf_counter() - t
    ray.shutdown()
    clips = lance.dataset(str(out / "clips.lance")).to_table(
        columns=["video_id", "start_s", "end_s", "width", "height", "fps"]).to_pylist()
    videos = {r["video_id"]: r["uri"] for r in
              lance.dataset(str(out / "videos.lance")).to_table(columns=["video_id", "uri"]).to_pylist()}
    for c in clips:
        c["uri"] = videos[c["video_id"]]
    return summary, wall, mem.by_stage(), clips


def machine_cpu_s() -> float:
    """CPU-seconds every process on the machine has used since boot (user, nice, system, irq), from /proc/stat:
    a job's Ray processes (raylet, GCS, workers) are not this process's children, so rusage misses them."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def with_cpu(fn, *args):
    """(fn(*args), the machine's CPU-seconds meanwhile)."""
    c = machine_cpu_s()
    out = fn(*args)
    return out, machine_cpu_s() - c


def decode_floor(inputs: list[Path]) -> float:
    """Seconds for ffmpeg to decode every input (one process each, decode only)."""
    return sum(best_of(1, lambda p=p: ffmpeg_decode(p)) for p in inputs)


def encode_floor(clips: list[dict], cfg) -> float:
    """Seconds for ffmpeg to cut and encode every kept clip with the job's libx264 settings (one process each,
    an input seek and an exact start, as the job does); a clip ffmpeg cannot cut is printed and left out."""
    e = cfg.encode
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for k, c in enumerate(clips):
            cmd = ["ffmpeg", "-v", "error", "-y", "-ss", f"{c['start_s']:.6f}", "-i", c["uri"],
                   "-t", f"{c['end_s'] - c['start_s']:.6f}", "-an", "-vf", f"scale={c['width']}:{c['height']}",
                   "-r", f"{c['fps']:.6f}", "-c:v", e.codec, "-preset", e.preset, "-crf", str(e.crf),
                   "-threads", str(e.threads), "-pix_fmt", "yuv420p", "-x264-params", "mbtree=0",
                   str(Path(tmp) / f"{k}.mp4")]
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:  # the floor leaves it out, and says so
                print(f"  floor: ffmpeg could not cut {Path(c['uri']).name} at {c['start_s']:.3f} s: "
                      f"{_last_error(proc.stderr)}", flush=True)
                continue
            total += time.perf_counter() - t
    return total


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.strip().startswith("Last message")]
    return (lines or ["?"])[-1][:120]


def copied_corpus(files: list[Path], copies: int) -> list[Path]:
    """`copies` hard links of each file under names of their own: a corpus `copies` times as long with the same
    footage, whose every video the job processes in full (distinct URIs give distinct video ids; dropping
    duplicates is the separate `curate dedup` step)."""
    out = OUT / f"corpus_x{copies}"
    links = []
    for k in range(copies):
        for f in files:
            link = out / f"{k}_{f.name}"
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(f, link)
                except OSError:  # another filesystem
                    shutil.copyfile(f, link)
            links.append(link)
    return links


def marginal(totals: dict[tuple[str, str], tuple[float, float, float, float]], base: str, more: str) -> None:
    """What the extra videos of corpus `more` cost over corpus `base`, against their floor: a job's fixed costs
    (Ray's start, the workers' imports and model loads) cancel out, leaving the per-video rate a large corpus runs
    at."""
    print(f"\nmarginal cost of {more} over {base} (job s and CPU-s against the floor's):")
    for mode in ("reencode", "copy"):
        (w1, f1, c1, fc1), (w2, f2, c2, fc2) = totals[base, mode], totals[more, mode]
        print(f"  {mode:8} job +{w2 - w1:.1f} s against floor +{f2 - f1:.1f} s: {(w2 - w1) / (f2 - f1):.2f}x;"
              f" CPU +{c2 - c1:.0f} against +{fc2 - fc1:.0f} CPU-s: {(c2 - c1) / (fc2 - fc1):.2f}x")


def job(corpora: dict[str, list[Path]], gpu: bool, scorers: bool = True,
        compare: tuple[str, str] | None = None) -> None:
    """Each corpus's jobs against their floor; `compare` (base, more): the marginal cost of one over the other."""
    print("\n2. whole job, captions off (tiny profile; a fresh local Ray each; the floor measured in this run"
          f"{'; NVDEC and NVENC' if gpu else ''}{'' if scorers else '; every scorer off'})")
    print(f"{'corpus':16} {'mode':8} {'videos':>6} {'failed':>6} {'clips':>5} {'job s':>7} {'decode s':>9}"
          f" {'encode s':>9} {'floor s':>8} {'x floor':>8} {'CPU-s job/floor':>15}  where the job's time went")
    peaks, totals = {}, {}
    for name, inputs in corpora.items():
        decode, decode_cpu = with_cpu(decode_floor, inputs)
        for mode in ("reencode", "copy"):
            (summary, wall, peak, clips), job_cpu = with_cpu(run_job, name, inputs, mode, gpu, scorers)
            enc, enc_cpu = with_cpu(encode_floor, clips, job_config(mode)) if mode == "reencode" else (0.0, 0.0)
            floor = decode + enc
            cpu = f"{job_cpu:.0f}/{decode_cpu + enc_cpu:.0f}"
            t = summary.timings
            busy = ", ".join(f"{k} {v:.1f}" for k, v in summary.stage_busy_s.items())
            print(f"{name:16} {mode:8} {len(inputs):6d} {summary.videos_failed:6d} {summary.clips:5d} {wall:7.1f}"
                  f" {decode:9.1f} {enc:9.1f} {floor:8.1f} {wall / floor:8.2f} {cpu:>15}  Ray start "
                  f"{t.get('ray_start_s', 0):.1f}, execute {t.get('execute_s', 0):.1f} (busy: {busy}), commits "
                  f"{t.get('commit_s', 0):.2f}, closing {t.get('finish_s', 0):.1f}", flush=True)
            peaks[f"{name} {mode}"] = peak
            totals[name, mode] = (wall, floor, job_cpu, decode_cpu + enc_cpu)
    if compare:
        marginal(totals, *compare)
    kinds = sorted({k for p in peaks.values() for k in p if "Stage" in k or k == "IDLE"})  # not Ray's own actors
    print("\npeak RSS per kind of worker, MiB (the highest among the workers that peaked running it; IDLE: a task"
          " worker whose peak came between tasks):")
    print(f"{'job':26} " + " ".join(f"{k[:24]:>24}" for k in kinds))
    for job_name, per in peaks.items():
        print(f"{job_name:26} " + " ".join(f"{per.get(k, float('nan')):24.0f}" for k in kinds))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, nargs="+", default=[1])
    ap.add_argument("--heights", type=int, nargs="+", default=[720, 1080])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-analysis", action="store_true")
    ap.add_argument("--skip-job", action="store_true")
    ap.add_argument("--gpu", action="store_true", help="NVDEC and NVENC (a machine with an NVIDIA GPU)")
    ap.add_argument("--no-scorers", action="store_true",
                    help="jobs with every scorer off: the pipeline's own share of the job, apart from the scorers'")
    ap.add_argument("--corpus-only", action="store_true", help="jobs on the real corpus only, not the long files")
    ap.add_argument("--copies", type=int, default=1,
                    help="also a job on K copies of the real corpus, and the marginal cost of the extra videos")
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found: `make bench` installs it (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    t = time.perf_counter()
    longs = [make_long(m, h) for m in args.minutes for h in args.heights]
    print(f"inputs ready in {time.perf_counter() - t:.0f} s: " + ", ".join(p.name for p, _ in longs))
    our_cuts(longs[0][0], args.gpu)  # imports and OpenCV warmed before timing
    if not args.skip_analysis:
        analysis(longs, args.repeat, args.gpu)
    if not args.skip_job:
        longs_jobs = {} if args.corpus_only else {p.stem: [p] for p, _ in longs}
        copies = {f"real corpus x{args.copies}": copied_corpus(real_corpus(), args.copies)} if args.copies > 1 else {}
        job({"real corpus": real_corpus(), **copies, **longs_jobs}, args.gpu, scorers=not args.no_scorers,
            compare=("real corpus", *copies) if copies else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
