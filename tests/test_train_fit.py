"""The trainer learns and resumes exactly, on four synthetic clips stored as a curated clips.lance (CPU, tiny).

One module-scoped VAE run serves every test: the VAE overfit check, the latent cache, the DiT overfit, resume
and sampling.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import lance
import numpy as np
import pyarrow as pa
import pytest

from curate.store.schema import CLIPS
from train import checkpoint
from train.config import load_config
from train.data import make_dataset, make_loader
from train.latents import cache_latents
from train.loop import fit
from train.sample import sample_to_files, write_mp4

REPO = Path(__file__).resolve().parent.parent
CAPTIONS = ["a red square moving right", "a green square moving left", "a blue square moving down", None]


def synthetic_clip(i: int, frames: int = 17, h: int = 48, w: int = 64) -> np.ndarray:
    """A coloured square moving over a gradient; colour and direction differ per clip."""
    colours = [(230, 40, 40), (40, 200, 60), (50, 80, 230), (230, 210, 40)]
    dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][i % 4]
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, np.full_like(xx, 90.0)], -1)
    out = []
    for t in range(frames):
        f = base.copy()
        cy, cx = h // 2 + dy * (t - frames // 2), w // 2 + 2 * dx * (t - frames // 2)
        f[max(cy - 8, 0):cy + 8, max(cx - 8, 0):cx + 8] = colours[i % 4]
        out.append(f)
    return np.stack(out).astype(np.uint8)


@pytest.fixture(scope="module")
def synthetic_dataset(tmp_path_factory) -> Path:
    """A dataset directory whose clips.lance holds 4 clips (64x48, 17 frames), tagged `synthetic`."""
    d = tmp_path_factory.mktemp("train_synthetic")
    rows = []
    for i, caption in enumerate(CAPTIONS):
        buf = io.BytesIO()
        write_mp4(synthetic_clip(i), buf, fps=24)
        rows.append({"clip_id": f"clip-{i}", "video_id": "synthetic", "video": buf.getvalue(), "codec": "h264",
                     "width": 64, "height": 48, "fps": 24.0, "num_frames": 17, "duration_s": 17 / 24,
                     "aesthetic": 4.0 + i, "caption": caption, "caption_short": caption, "model_profile": "tiny"})
    ds = lance.write_dataset(pa.Table.from_pylist(rows, schema=CLIPS), str(d / "clips.lance"), schema=CLIPS)
    ds.tags.create("synthetic", ds.version)
    return d


def tiny_config(dataset: Path, out: Path, **overrides):
    base = {"data.dataset": str(dataset), "data.buckets": [[32, 32]], "data.caption_dropout": 0.0,
            "run.out_dir": str(out), "run.log_every": 1, "run.ckpt_every": 1000}
    return load_config(REPO / "configs" / "train_tiny.yaml", {**base, **overrides})


def log_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained_vae(synthetic_dataset, tmp_path_factory):
    """The tiny VAE overfit on one fixed batch of two clips: (checkpoint path, log rows)."""
    out = tmp_path_factory.mktemp("vae_run")
    cfg = tiny_config(synthetic_dataset, out, **{
        "data.version": "synthetic", "data.filter": "clip_id IN ('clip-0', 'clip-1')", "data.random_crop": False,
        "data.batch_size": 2, "vae.recon_loss": "mse", "run.steps": 80, "optim.ema_decay": 0.0})
    result = fit(cfg, "vae", echo=lambda line: None)
    return Path(result["checkpoint"]), log_rows(out)


def test_vae_overfits_a_tiny_batch(trained_vae):
    ckpt, rows = trained_vae
    first, last = rows[0]["recon"], np.mean([r["recon"] for r in rows[-5:]])
    assert last <= 0.2 * first, f"reconstruction loss {first:.4f} -> {last:.4f}: fell by less than 80%"
    state = checkpoint.load(ckpt)
    assert state["kind"] == "vae" and state["step"] == 80 and state["model_profile"] == "tiny"
    assert state["dataset"]["ref"] == "synthetic" and state["dataset"]["clips_version"] == 1
    assert state["latent_scale"] > 0 and float(state["model"]["latent_scale"]) == pytest.approx(state["latent_scale"])


@pytest.fixture(scope="module")
def trained_dit(synthetic_dataset, trained_vae, tmp_path_factory):
    """Latents cached into Lance, then the tiny DiT trained on them: (checkpoint, log rows, cache info)."""
    vae_ckpt, _ = trained_vae
    cfg = tiny_config(synthetic_dataset, tmp_path_factory.mktemp("unused"), **{"vae.checkpoint": str(vae_ckpt)})
    info = cache_latents(cfg, echo=lambda line: None)
    out = tmp_path_factory.mktemp("dit_run")
    cfg = tiny_config(synthetic_dataset, out, **{"vae.checkpoint": str(vae_ckpt), "data.latents": info["table"],
                                                 "run.steps": 250, "optim.ema_decay": 0.9})
    result = fit(cfg, "dit", echo=lambda line: None)
    return Path(result["checkpoint"]), log_rows(out), info


def test_latents_are_cached_in_lance(trained_dit, synthetic_dataset):
    _, _, info = trained_dit
    assert info["table"] == f"{synthetic_dataset}/latents.lance" and info["rows"] == 4
    table = lance.dataset(info["table"]).to_table().to_pylist()
    assert sorted(r["clip_id"] for r in table) == ["clip-0", "clip-1", "clip-2", "clip-3"]
    row = table[0]
    assert row["shape"] == [4, 3, 4, 4] and len(row["mean"]) == 2 * 4 * 3 * 4 * 4 and row["clips_version"] == 1


def test_dit_overfits_four_clips(trained_dit):
    ckpt, rows, _ = trained_dit
    losses = [r["loss"] for r in rows]
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert len(losses) == 250 and last <= 0.5 * first, f"flow loss {first:.3f} -> {last:.3f}: fell by less than 50%"
    state = checkpoint.load(ckpt)
    assert state["kind"] == "dit" and state["model_profile"] == "tiny" and "tiny" in state["text_encoder"]


def test_resume_gives_the_same_next_step_loss(synthetic_dataset, trained_vae, tmp_path):
    """Decoding clips (random crops, caption dropout) and encoding them on the fly: 6 steps straight, or 3
    steps, a new `fit` from the checkpoint, then 3 more; epochs of two batches, so resume crosses epochs."""
    vae_ckpt, _ = trained_vae
    settings = {"vae.checkpoint": str(vae_ckpt), "data.batch_size": 2, "data.caption_dropout": 0.5,
                "data.buckets": [[32, 32], [32, 48]], "run.ckpt_every": 3, "run.steps": 6}
    fit(tiny_config(synthetic_dataset, tmp_path / "straight", **settings), "dit", echo=lambda line: None)
    fit(tiny_config(synthetic_dataset, tmp_path / "resumed", **{**settings, "run.steps": 3}), "dit",
        echo=lambda line: None)
    lines = []
    fit(tiny_config(synthetic_dataset, tmp_path / "resumed", **settings), "dit", echo=lines.append)
    assert lines[0].startswith("resumed dit from") and "at step 3" in lines[0]
    straight = [r["loss"] for r in log_rows(tmp_path / "straight")]
    resumed = [r["loss"] for r in log_rows(tmp_path / "resumed")]
    assert len(straight) == len(resumed) == 6
    assert resumed[3] == straight[3], "the first step after resume differs from the uninterrupted run"
    assert resumed == straight


def test_spawned_workers_give_the_same_batches(synthetic_dataset, tmp_path):
    """Two spawned loader workers (Lance is not fork-safe) and two ranks' shards, against in-process loading:
    the same seeded crops, captions and order."""
    cfg = tiny_config(synthetic_dataset, tmp_path, **{"data.caption_dropout": 0.5, "data.batch_size": 1})
    dataset = make_dataset(cfg.data, seed=5)

    def first(n: int, **kw) -> list[tuple]:
        it = iter(make_loader(dataset, batch_size=1, seed=5, **kw))
        batches = [next(it) for _ in range(n)]
        del it
        return [(b["clip_id"][0], b["caption"][0], b["position"], b["video"].sum().item()) for b in batches]

    in_process = first(6, num_workers=0)
    assert first(6, num_workers=2) == in_process
    shards = [first(3, num_workers=0, rank=r, world_size=2) for r in range(2)]
    assert {b[0] for b in shards[0] + shards[1]} == {f"clip-{i}" for i in range(4)}
    assert [b[2] for b in shards[0]] == [(0, 0), (0, 1), (1, 0)]


def test_sampling_writes_an_mp4_of_the_configured_shape(trained_dit, tmp_path):
    ckpt, _, _ = trained_dit
    paths = sample_to_files(str(ckpt), ["a red square moving right", "a blue square moving down"], str(tmp_path),
                            num_frames=9, height=32, width=48, steps=4, cfg_scale=3.0, fps=8)
    assert [p.name for p in paths] == ["00-a-red-square-moving-right.mp4", "01-a-blue-square-moving-down.mp4"]
    with av.open(str(paths[0])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert container.streams.video[0].codec_context.name in ("h264", "mpeg4")
        assert container.metadata["title"] == "a red square moving right"
        assert "model_profile=tiny" in container.metadata["comment"]
    assert len(frames) == 9 and frames[0].shape == (32, 48, 3)
