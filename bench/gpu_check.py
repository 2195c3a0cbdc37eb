"""NVDEC and NVENC against the CPU codecs (issue 14), ready for a lent GPU machine: no Ray, Lance or ffmpeg CLI
needed (the device image has none of them; bench/gpu_check.sh installs the few wheels this needs).

For a generated input at each --heights (hard cuts every --scene-s seconds between the demo corpus's scene kinds,
libx264, so the cuts are known):
1. decode-only through PyAV: FFmpeg's CPU decoder (its threads) against NVDEC (FFmpeg's CUDA hwaccel);
2. our analysis pass (`analyze_source`: decode, cuts, samples, keyframes; the scorers are a later stage) with
   `input.decode_device` cpu against cuda, and the cuts of each against the truth;
3. our encode (`encode_video_clips`, the job's own code and settings), every scene a clip: libx264 against NVENC
   (`encode.device` cpu against cuda).
Each is timed best of --repeat. Where NVDEC or NVENC cannot be had, the run says why (the product's own fallback
message) and the GPU column times the CPU path; the JSON records which engine ran.

    here:   make gpu-wheels                       (PyAV and pydantic for the device's Python 3.12, into .whl/)
    there:  device run, carry [".whl"]:  bash bench/gpu_check.sh      (writes gpu_check.json under $OUT)
    any machine with the project's venv:  .venv/bin/python bench/gpu_check.py [--seconds 20] [--heights 720]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.analysis_bench import our_pass, timed_best  # noqa: E402

FPS = 30
KINDS = ("moving", "pan", "static")  # the demo corpus's scenes that hold no gradual change


def make_input(path: Path, seconds: int, height: int, scene_s: int) -> list[int]:
    """Writes the input (libx264, `FPS`), scene by scene so that memory holds one scene; returns the scenes'
    first frames (the true cuts)."""
    import av

    from curate.video.democorpus import scene_frames

    width, per_scene = height * 16 // 9, scene_s * FPS
    rng, starts = np.random.default_rng(0), []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for k, start in enumerate(range(0, seconds * FPS, per_scene)):
            starts.append(start)
            for rgb in scene_frames(KINDS[k % len(KINDS)], min(per_scene, seconds * FPS - start), width, height, rng):
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return starts


def decode_only(path: Path, gpu: bool) -> tuple[int, str]:
    """(frames decoded, the engine that decoded them)."""
    import av

    from curate.video.gpu import open_on_gpu

    container = open_on_gpu(str(path)) if gpu else av.open(str(path))
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = sum(1 for _ in container.decode(stream))
        engine = "nvdec" if gpu and stream.codec_context.is_hwaccel else "cpu"
    return n, engine


def encode(path: Path, rows: list[dict], gpu: bool) -> tuple[int, str]:
    """(frames written, the encoder) for every scene of `rows` encoded as a clip, as the job's encode stage does."""
    from curate.config import Config
    from curate.job.encode import ClipRequest, encode_video_clips
    from curate.video.gpu import gpu_encoder

    cfg = Config().encode
    cfg.device = "cuda" if gpu else "cpu"
    info = rows[0]["video"]
    requests = [ClipRequest(f"s{k}", r["start_pts"], r["end_pts"], r["start_s"], r["end_s"])
                for k, r in enumerate(rows)]
    clips = encode_video_clips(str(path), requests, is_vfr=bool(info.get("is_vfr")),
                               avg_fps=info.get("avg_fps") or 0.0, cfg=cfg, gpus=1.0 if gpu else 0.0,
                               decode_device="cuda" if gpu else "cpu")
    failed = {k: v for k, v in clips.items() if isinstance(v, str)}
    if failed:
        raise RuntimeError(f"{len(failed)} clips failed: {next(iter(failed.values()))}")
    return sum(c.num_frames for c in clips.values()), cfg.gpu_codec if gpu and gpu_encoder(cfg.gpu_codec) else cfg.codec


def check(path: Path, truth: list[int], repeat: int) -> dict:
    out = {"file": path.name, "true_cuts": len(truth)}
    our_pass(path)  # imports and first-use costs, before any timing
    for gpu in (False, True):
        side = "gpu" if gpu else "cpu"
        out[f"decode_s_{side}"], (out["frames"], out[f"decode_engine_{side}"]) = timed_best(
            repeat, partial(decode_only, path, gpu))
        out[f"analysis_s_{side}"], rows = timed_best(repeat, partial(our_pass, path, gpu))
        out[f"cuts_equal_truth_{side}"] = [r["start_frame"] for r in rows] == truth
        out[f"encode_s_{side}"], (out["frames_encoded"], out[f"encode_codec_{side}"]) = timed_best(
            repeat, partial(encode, path, rows, gpu))
    return out


def device_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    except ImportError:
        return "torch not installed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--heights", type=int, nargs="+", default=[720, 1080])
    ap.add_argument("--scene-s", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "gpu"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # the fallback reasons, once each
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"device: {device_name()}", flush=True)
    results = []
    for height in args.heights:
        path = out / f"gen_{args.seconds}s_{height}p.mp4"
        t = time.perf_counter()
        truth = make_input(path, args.seconds, height, args.scene_s)
        print(f"{path.name}: made in {time.perf_counter() - t:.1f} s, {len(truth)} scenes", flush=True)
        results.append(check(path, truth, args.repeat))
        path.unlink()
    print(f"\n{'file':22} {'frames':>6} {'decode cpu/gpu s':>17} {'analysis cpu/gpu s':>19} {'encode cpu/gpu s':>17}"
          "  engines (decode, encode)  cuts = truth (cpu, gpu)")
    for r in results:
        print(f"{r['file']:22} {r['frames']:6d} {r['decode_s_cpu']:8.2f}/{r['decode_s_gpu']:<8.2f}"
              f" {r['analysis_s_cpu']:9.2f}/{r['analysis_s_gpu']:<9.2f}"
              f" {r['encode_s_cpu']:8.2f}/{r['encode_s_gpu']:<8.2f}"
              f"  {r['decode_engine_gpu']}, {r['encode_codec_gpu']:<12}  {r['cuts_equal_truth_cpu']}, "
              f"{r['cuts_equal_truth_gpu']}")
    (out / "gpu_check.json").write_text(json.dumps({"device": device_name(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
