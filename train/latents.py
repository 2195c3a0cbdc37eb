"""Caches VAE latents of the selected clips in a Lance table, so DiT training does not decode or re-encode.

The table (`<dataset>/latents.lance` by default) has one row per clip: `clip_id`, the posterior's `mean` and
`std` as float16 bytes with their `shape` (C, T', H', W'), the frames and bucket they were taken from, the
clips.lance version read and the VAE checkpoint used. Each run overwrites the table as a new Lance version (the
earlier ones stay readable). Clips are taken deterministically: centred in time and space, no caption dropout.
DiT training reads it with `data.latents: <table uri>`, joined by clip_id to the clips selection (whose
captions are used, so new captions need no re-encoding); the trade-off is a fixed crop per clip.
"""

from __future__ import annotations

import dataclasses
import time

import pyarrow as pa
import torch

from train.config import TrainConfig
from train.data import LanceClipDataset, make_loader
from train.distributed import pick_device
from train.tasks import load_vae

LATENTS = pa.schema([
    pa.field("clip_id", pa.string()),
    pa.field("mean", pa.large_binary()),  # float16, C-order, `shape`
    pa.field("std", pa.large_binary()),
    pa.field("shape", pa.list_(pa.int32())),
    pa.field("num_frames", pa.int32()),
    pa.field("frame_stride", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("width", pa.int32()),
    pa.field("clips_version", pa.int64()),
    pa.field("vae_checkpoint", pa.string()),
    pa.field("latent_scale", pa.float32()),
])
CHUNK_ROWS = 512


def latents_uri(dataset: str, table: str = "latents") -> str:
    return f"{dataset.rstrip('/')}/{table}.lance"


@torch.no_grad()
def cache_latents(cfg: TrainConfig, *, vae_checkpoint: str | None = None, table_uri: str | None = None,
                  batch_size: int = 8, device: str = "auto", echo=print) -> dict:
    """Encodes every selected clip (cfg.data: dataset, version, filter, frames, buckets) and writes the table.

    Args:
        vae_checkpoint: the VAE to encode with (default: cfg.vae.checkpoint).
        table_uri: where to write (default: `<dataset>/latents.lance`).
    Returns:
        {"table", "rows", "version" (of the latents table), "clips_version", "seconds"}.
    Raises:
        FileNotFoundError: no such VAE checkpoint. ValueError: no VAE given, or no clips selected.
    """
    import lance

    vae_checkpoint = vae_checkpoint or cfg.vae.checkpoint
    if not vae_checkpoint:
        raise ValueError("cache-latents needs a trained VAE: pass its checkpoint (--vae) or set vae.checkpoint")

    started = time.perf_counter()
    dev = pick_device(device)
    vae = load_vae(vae_checkpoint, dev)
    data = dataclasses.replace(cfg.data, random_crop=False, caption_dropout=0.0, latents=None)
    dataset = LanceClipDataset(data, seed=cfg.run.seed)
    loader = make_loader(dataset, batch_size=batch_size, num_workers=data.num_workers)
    batches = iter(loader)
    uri = table_uri or latents_uri(cfg.data.dataset)
    rows, done, written = [], 0, None

    def flush(mode: str):  # in chunks, so memory stays bounded on large selections
        return lance.write_dataset(pa.Table.from_pylist(rows, schema=LATENTS), uri, schema=LATENTS, mode=mode,
                                   storage_options=cfg.data.storage_options)

    epoch_size = len(loader.batch_sampler.epoch_batches(0))  # one pass: the first epoch's batches
    for _ in range(epoch_size):
        batch = next(batches)
        video = batch["video"].to(dev)
        posterior = vae.encode(video)
        for cid, mean, std in zip(batch["clip_id"], posterior.mean.cpu(), posterior.std.cpu()):
            rows.append({"clip_id": cid, "mean": mean.half().numpy().tobytes(), "std": std.half().numpy().tobytes(),
                         "shape": list(mean.shape), "num_frames": data.num_frames, "frame_stride": data.frame_stride,
                         "height": video.shape[3], "width": video.shape[4], "clips_version": dataset.version,
                         "vae_checkpoint": str(vae_checkpoint), "latent_scale": float(vae.latent_scale)})
        done += len(batch["clip_id"])
        echo(f"encoded {done}/{len(dataset)} clips")
        if len(rows) >= CHUNK_ROWS:
            written, rows = flush("overwrite" if written is None else "append"), []
    del batches
    if rows or written is None:
        written = flush("overwrite" if written is None else "append")
    return {"table": uri, "rows": done, "version": written.version, "clips_version": dataset.version,
            "seconds": time.perf_counter() - started}
