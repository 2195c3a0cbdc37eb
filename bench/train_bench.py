"""Trainer benchmark: clips/s from clips.lance vs the same clips as mp4 files in a directory, and training speed.

Side by side in one process (best of --repeat runs each):
1. Data: every selected clip turned into a training tensor (T frames at a stride, decoder-side scaling to
   cover the clip's bucket, crop), read a) from `clips.lance` by the trainer's dataset (blob column, lazily, one
   request per batch) with its default decoder, PyAV; b) the same with decord; c) from a directory of the same
   mp4 files with decord opening each file by path. b) vs c) is what the storage costs (same decoder, same
   code); a) vs c) is the trainer's data path against the plain decord-from-files baseline.
2. Training: steps/s of the tiny model (configs/train_tiny.yaml): the VAE, the DiT decoding and encoding clips
   on the fly, and the DiT on cached latents (`cache-latents`).
3. With a GPU: samples/s and model FLOPs utilisation of a mid-size DiT (--gpu-size, default B) on random
   latents, bf16 autocast.

    .venv/bin/python bench/train_bench.py --dataset demo/dataset [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train.config import load_config  # noqa: E402
from train.data import DataConfig, LanceClipDataset, cover_size, crop_to_bucket, decode_frames, nearest_bucket  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
H100_BF16_TFLOPS = 989.0  # dense; H200 has the same compute


def timings(repeat: int, fns: dict) -> dict[str, list[float]]:
    """Wall times of each function over `repeat` rounds, the functions alternating within each round so that a
    burst of load from elsewhere (this machine is shared) hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def export_mp4s(dataset: LanceClipDataset, directory: Path) -> list[Path]:
    """Writes each selected clip's mp4 bytes, as stored, to `directory`."""
    clips = dataset.handle("clips", version=dataset.version)
    paths = []
    for row in dataset.rows:
        path = directory / f"{row['clip_id']}.mp4"
        path.write_bytes(clips.take_blobs("video", ids=[row["_rowid"]])[0].read())
        paths.append(path)
    return paths


def data_bench(args) -> dict:
    """clips/s of three paths over the same clips, same frames, same crop: clips.lance with the trainer's default
    decoder (PyAV from the blob), clips.lance with decord, and a directory of mp4 files with decord."""
    def selection(decoder: str) -> LanceClipDataset:
        return LanceClipDataset(DataConfig(dataset=args.dataset, version=args.version, filter=args.filter,
                                           num_frames=args.frames, frame_stride=2, resolution=args.resolution,
                                           random_crop=False, decoder=decoder, caption_dropout=0.0))

    lance_pyav, lance_decord = selection("pyav"), selection("decord")
    cfg = lance_decord.cfg
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_mp4s(lance_decord, Path(tmp))

        def from_lance(dataset: LanceClipDataset):
            def run():  # as the DataLoader asks: a batch's keys at once (one blob request per batch)
                for i in range(0, len(dataset), args.batch_size):
                    dataset.__getitems__(list(range(i, min(i + args.batch_size, len(dataset)))))
            return run

        def from_directory():
            for row, path in zip(lance_decord.rows, paths):
                bucket = lance_decord.buckets[nearest_bucket(row["width"], row["height"], lance_decord.buckets)]
                frames = decode_frames(str(path), row["num_frames"], cfg.num_frames, cfg.frame_stride,
                                       cover_size(row["width"], row["height"], bucket), None, "decord")
                crop_to_bucket(frames, bucket, None)

        paths_to_time = {"lance_pyav": from_lance(lance_pyav), "lance_decord": from_lance(lance_decord),
                         "dir_decord": from_directory}
        for fn in paths_to_time.values():  # warm the page cache and the decoder libraries
            fn()
        times = timings(args.repeat, paths_to_time)
    n = len(lance_decord)
    out = {"clips": n, "frames": args.frames, "resolution": args.resolution, "repeat": args.repeat}
    for name, t in times.items():
        out[f"{name}_clips_per_s"] = n / min(t)
    for name in ("lance_pyav", "lance_decord"):
        paired = sorted(d / lo for lo, d in zip(times[name], times["dir_decord"]))
        out[f"{name}_vs_dir"] = min(times["dir_decord"]) / min(times[name])
        out[f"{name}_vs_dir_median_pair"] = paired[len(paired) // 2]
    return out


def train_bench(args, work: Path) -> dict:
    """Steps/s of the tiny stages through the real `fit`, from its log (the first log interval is warm-up)."""
    from train.latents import cache_latents
    from train.loop import fit

    quiet = lambda line: None  # noqa: E731
    base = {"data.dataset": args.dataset, "data.version": args.version, "data.filter": args.filter,
            "run.steps": args.train_steps, "run.log_every": args.train_steps // 3, "run.ckpt_every": 10 ** 9}
    base = {k: v for k, v in base.items() if v is not None}
    tiny = REPO / "configs" / "train_tiny.yaml"

    def steps_per_s(out: Path, cfg) -> float:
        rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        return max(r["samples_per_s"] for r in rows[1:]) / cfg.data.batch_size

    results = {}
    vae_cfg = load_config(tiny, {**base, "run.out_dir": str(work / "vae")})
    vae = fit(vae_cfg, "vae", echo=quiet)
    results["vae_steps_per_s"] = steps_per_s(work / "vae", vae_cfg)
    dit_cfg = load_config(tiny, {**base, "run.out_dir": str(work / "dit"), "vae.checkpoint": vae["checkpoint"]})
    fit(dit_cfg, "dit", echo=quiet)
    results["dit_steps_per_s"] = steps_per_s(work / "dit", dit_cfg)
    table = cache_latents(dit_cfg, table_uri=str(work / "latents.lance"), echo=quiet)["table"]
    cached_cfg = load_config(tiny, {**base, "run.out_dir": str(work / "cached"), "vae.checkpoint": vae["checkpoint"],
                                    "data.latents": table})
    fit(cached_cfg, "dit", echo=quiet)
    results["dit_cached_steps_per_s"] = steps_per_s(work / "cached", cached_cfg)
    results["batch_size"] = dit_cfg.data.batch_size
    return results


def gpu_bench(args, device: str = "cuda") -> dict:
    """Samples/s and MFU of a DiT on random latents (a 17-frame 256 px clip through a 4x/8x VAE, 16 channels)."""
    from train.dit import DiT, dit_config, flops_per_sample

    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = dit_config(args.gpu_size, in_channels=16, text_dim=768, attention=args.gpu_attention)
    model = DiT(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b, grid, text_len = args.gpu_batch, (5, 32, 32), 77
    x = torch.randn(b, 16, *grid, device=device)
    text, pooled = torch.randn(b, text_len, 768, device=device), torch.randn(b, 768, device=device)
    mask = torch.ones(b, text_len, dtype=torch.bool, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(x, torch.rand(b, device=device), text, mask, pooled).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync()
    n = args.gpu_steps

    def run():
        for _ in range(n):
            step()
        sync()

    seconds = min(timings(args.repeat, {"run": run})["run"])
    samples_per_s = n * b / seconds
    tokens = grid[0] * (grid[1] // cfg.patch_size[1]) * (grid[2] // cfg.patch_size[2])
    flops = flops_per_sample(cfg, (grid[0], grid[1] // 2, grid[2] // 2), text_len)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": name, "size": args.gpu_size, "attention": args.gpu_attention,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "tokens": tokens, "batch": b,
            "samples_per_s": samples_per_s, "mfu": flops * samples_per_s / (args.peak_tflops * 1e12)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(REPO / "demo" / "dataset"))
    parser.add_argument("--version", default=None, help="tag or clips.lance version")
    parser.add_argument("--filter", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="clips per Lance request (the loader's batch)")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--gpu-size", default="B")
    parser.add_argument("--gpu-attention", default="factorised", choices=["full", "factorised"])
    parser.add_argument("--gpu-batch", type=int, default=8)
    parser.add_argument("--gpu-steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_TFLOPS, help="the GPU's dense bf16 peak")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    figures = {"data": data_bench(args)}
    d = figures["data"]
    print(f"data: {d['clips']} clips -> {d['frames']} frames at ~{d['resolution']} px (stride 2, bucket crop), "
          f"best of {args.repeat} alternating rounds")
    for name, label in [("lance_pyav", "clips.lance, PyAV (default)"), ("lance_decord", "clips.lance, decord"),
                        ("dir_decord", "mp4 directory, decord")]:
        ratio = "" if name == "dir_decord" else (f"  {d[name + '_vs_dir']:.2f}x the directory (median paired round "
                                                 f"{d[name + '_vs_dir_median_pair']:.2f}x)")
        print(f"  {label:30} {d[name + '_clips_per_s']:7.1f} clips/s{ratio}")
    if not args.skip_train:
        with tempfile.TemporaryDirectory() as tmp:
            figures["train"] = t = train_bench(args, Path(tmp))
        print(f"train (tiny profile, 32 px, 9 frames, batch {t['batch_size']}, CPU threads {torch.get_num_threads()}):")
        print(f"  VAE                         {t['vae_steps_per_s']:8.2f} steps/s")
        print(f"  DiT, decode + encode        {t['dit_steps_per_s']:8.2f} steps/s")
        print(f"  DiT, cached latents         {t['dit_cached_steps_per_s']:8.2f} steps/s")
    if torch.cuda.is_available():
        figures["gpu"] = g = gpu_bench(args)
        print(f"gpu: {g['device']}, DiT-{g['size']} ({g['params_m']:.0f}M, {g['attention']}), {g['tokens']} tokens, "
              f"batch {g['batch']}, bf16: {g['samples_per_s']:.1f} samples/s, MFU {100 * g['mfu']:.1f}%")
    else:
        print("gpu: none here (samples/s and MFU of a mid-size DiT need CUDA)")
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
