"""The trainer's pieces on their own: VAE, DiT, flow, buckets and batching, config, text encoder, RNG state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from train import checkpoint
from train.config import ConfigError, load_config
from train.data import BucketBatchSampler, DataConfig, bucket_sizes, cover_size, frame_indices, nearest_bucket
from train.dit import DIT_SIZES, DiT, dit_config, flops_per_sample
from train.flow import euler_sample, logit_normal_timesteps, shifted_schedule
from train.text import TextConfig, WeightsError, load_text_encoder
from train.vae import VAE_SIZES, VideoVAE, vae_config


@pytest.mark.parametrize("sc, tc, mult, frames, latent", [
    (8, 4, (1, 2, 2, 2), 9, (4, 3, 4, 4)),
    (8, 4, (1, 2, 2, 2), 1, (4, 1, 4, 4)),  # an image is a one-frame video
    (4, 2, (1, 2, 2), 5, (4, 3, 8, 8)),
    (8, 1, (1, 2, 2, 2), 3, (4, 3, 4, 4)),  # no temporal compression
])
def test_vae_shapes(sc, tc, mult, frames, latent):
    vae = VideoVAE(vae_config("tiny", spatial_compression=sc, temporal_compression=tc, channel_mult=mult))
    x = torch.rand(2, 3, frames, 32, 32) * 2 - 1
    recon, posterior = vae(x)
    assert tuple(posterior.mean.shape) == (2, *latent) and recon.shape == x.shape
    assert vae.cfg.latent_shape(frames, 32, 32) == latent


def test_vae_is_causal_in_time():
    torch.manual_seed(0)
    vae = VideoVAE(vae_config("tiny")).eval()
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    later_changed = x.clone()
    later_changed[:, :, 5:] = -1.0  # frames 5..8 belong to the last latent frame only
    with torch.no_grad():
        a, b = vae.encode(x).mean, vae.encode(later_changed).mean
    assert torch.equal(a[:, :, :2], b[:, :, :2]) and not torch.equal(a[:, :, 2], b[:, :, 2])


@pytest.mark.parametrize("overrides, message", [
    ({"channel_mult": (1, 2)}, "channel_mult needs"),
    ({"spatial_compression": 6}, "power of two"),
    ({"temporal_compression": 16}, "cannot exceed"),
])
def test_vae_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        vae_config("tiny", **overrides)
    with pytest.raises(ValueError, match="frames must be 1 \\+ k\\*4"):
        vae_config("tiny").latent_shape(8, 32, 32)


def test_named_sizes_build():
    assert set(VAE_SIZES) >= {"tiny", "small", "base"} and set(DIT_SIZES) >= {"tiny", "S", "B", "L"}
    assert sum(p.numel() for p in DiT(dit_config("tiny", text_dim=32)).parameters()) < 1e6


@pytest.mark.parametrize("attention", ["full", "factorised"])
def test_dit_shapes_masks_and_zero_init(attention):
    torch.manual_seed(0)
    model = DiT(dit_config("tiny", attention=attention, text_dim=16))
    x, t = torch.randn(2, 4, 3, 4, 6), torch.rand(2)
    text, pooled = torch.randn(2, 5, 16), torch.randn(2, 16)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(model(x, t, text, mask, pooled), torch.zeros_like(x))  # the zeroed final layer alone
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    out = model(x, t, text, mask, pooled)
    padded = text.clone()
    padded[:, 3:] = 7.0  # masked-out caption tokens must not matter
    assert out.shape == x.shape and torch.allclose(out, model(x, t, padded, mask, pooled), atol=1e-6)


@pytest.mark.parametrize("attention", ["full", "factorised"])
def test_dit_blocks_start_as_the_identity(attention):
    """At initialisation each block maps its tokens to themselves exactly, whatever the conditioning and the
    caption: every residual branch (self-attention, cross-attention, MLP) adds zero."""
    torch.manual_seed(0)
    model = DiT(dit_config("tiny", attention=attention, text_dim=16))
    d, grid = model.cfg.hidden_size, (3, 2, 4)
    x, c = torch.randn(2, 3 * 2 * 4, d), torch.randn(2, d)
    text = torch.randn(2, 5, d)  # the caption's tokens as the blocks get them, after text_proj
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        for block in model.blocks:
            assert torch.equal(block(x, c, grid, text, mask), x)
        # Not an identity by construction: the zero-initialised layers are what make it one.
        block = model.blocks[0]
        for p in (*block.adaLN[-1].parameters(), *block.cross_attn.proj.parameters()):
            torch.nn.init.normal_(p, std=0.05)
        assert not torch.allclose(block(x, c, grid, text, mask), x, atol=1e-3)


def test_flops_estimate_grows_with_tokens():
    cfg = dit_config("B")
    assert flops_per_sample(cfg, (5, 16, 16), 77) > 2 * flops_per_sample(cfg, (5, 8, 8), 77) > 0


def test_flow_timesteps_and_euler():
    t = logit_normal_timesteps(10_000, generator=torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1 and abs(t.median().item() - 0.5) < 0.02
    assert shifted_schedule(4, 3.0)[0] == 1 and shifted_schedule(4, 3.0)[-1] == 0
    target = torch.full((2, 3), 0.25)
    noise = torch.randn(2, 3)
    # A constant velocity noise - target carries the noise exactly to the target.
    out = euler_sample(lambda x, tt, guided: (noise - target).repeat(2 if guided else 1, 1), noise, steps=3)
    assert torch.allclose(out, target, atol=1e-6)
    # Guidance: v_uncond + s (v_cond - v_uncond) with cond 1, uncond 0 -> velocity s.
    guided = euler_sample(lambda x, tt, g: torch.cat([torch.ones_like(x[:2]), torch.zeros_like(x[2:])]),
                          torch.zeros(2, 3), steps=2, cfg_scale=3.0)
    assert torch.allclose(guided, torch.full((2, 3), -3.0))


def test_buckets():
    cfg = DataConfig(resolution=256, aspect_ratios=[1.0, 16 / 9, 9 / 16])
    assert bucket_sizes(cfg) == [(256, 256), (192, 336), (336, 192)]
    assert bucket_sizes(DataConfig(buckets=[[32, 48]])) == [(32, 48)]
    buckets = bucket_sizes(cfg)
    assert [nearest_bucket(w, h, buckets) for w, h in [(1280, 720), (720, 1280), (640, 480), (300, 310)]] == \
        [1, 2, 1, 0]  # 4:3 is nearer 7:4 than 1:1 in log ratio
    assert cover_size(1280, 720, (192, 336)) == (341, 192)  # covers 336 wide, keeps 16:9


@pytest.mark.parametrize("available, frames, stride, expected", [
    (40, 5, 2, [15, 17, 19, 21, 23]),  # centred without a generator
    (9, 5, 4, [0, 2, 4, 6, 8]),  # stride lowered to fit
    (3, 5, 2, [0, 1, 2, 2, 2]),  # too short even at stride 1: the last frame repeats
])
def test_frame_indices(available, frames, stride, expected):
    assert frame_indices(available, frames, stride, None) == expected
    picked = frame_indices(available, frames, stride, np.random.default_rng(0))
    assert len(picked) == frames and max(picked) < available


def test_bucket_batches_are_sharded_seeded_and_resumable():
    keys = [i % 3 for i in range(23)]
    ranks = [BucketBatchSampler(keys, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    epoch0 = [s.epoch_batches(0) for s in ranks]
    assert len(epoch0[0]) == len(epoch0[1])
    seen = [i for batches in epoch0 for b in batches for i in b]
    assert set(seen) == set(range(23))  # every item once (a batch repeats only to even out the ranks)
    assert all(len({keys[i] for i in b}) == 1 for batches in epoch0 for b in batches)
    assert epoch0[0] != ranks[0].epoch_batches(1)  # reshuffled per epoch
    it = iter(BucketBatchSampler(keys, 4, seed=1))
    stream = [next(it) for _ in range(20)]
    later = BucketBatchSampler(keys, 4, seed=1, start=stream[7][0][1:])
    assert [next(iter(later)) for _ in range(1)] == [stream[7]]
    resumed = iter(later)
    assert [next(resumed) for _ in range(13)] == stream[7:]


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="unknown config field 'dit.deepth'"):
        load_config(overrides={"dit.deepth": 3})
    with pytest.raises(ConfigError, match="'optim.lr' must be a number"):
        load_config(sets=["optim.lr=fast"])
    with pytest.raises(ConfigError, match="num_frames must be 1 \\+ k \\* 4"):
        load_config(overrides={"data.num_frames": 16})
    with pytest.raises(ConfigError, match="not a multiple of 16"):
        load_config(overrides={"data.buckets": [[40, 40]]})
    with pytest.raises(ConfigError, match="text profile"):
        load_config(overrides={"text.profile": "huge"})
    path = tmp_path / "c.yaml"
    path.write_text("data: {filter: 'aesthetic >= 5', version: 3}\ndit: {size: B, model: {attention: factorised}}\n")
    cfg = load_config(path, sets=["run.steps=7"])
    assert (cfg.data.filter, cfg.data.version, cfg.run.steps) == ("aesthetic >= 5", 3, 7)
    assert cfg.dit.build(4, 768).attention == "factorised" and cfg.dit.build(4, 768).hidden_size == 768


def test_tiny_text_encoder_and_missing_weights():
    enc = load_text_encoder(TextConfig(profile="tiny"))
    before = torch.get_rng_state()
    tokens, mask, pooled = enc(["a red square", ""])
    assert torch.equal(before, torch.get_rng_state())
    assert tokens.shape[0] == 2 and tokens.shape[2] == enc.dim == pooled.shape[1]
    assert mask[1].sum() == 2 and mask[0].sum() > 2  # "" is start and end of text only
    again = load_text_encoder(TextConfig(profile="tiny"))
    same = zip(again.state_dict().values(), enc.state_dict().values())
    assert all(torch.equal(a, b) for a, b in same)  # the same tiny tower in every process
    assert torch.allclose(again(["a red square"])[2], pooled[:1], atol=1e-5)
    with pytest.raises(WeightsError, match="text encoder checkpoint not found: /nowhere/clip.bin"):
        load_text_encoder(TextConfig(model="ViT-B-32", pretrained="/nowhere/clip.bin"))


def test_rng_state_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(3)
    state = checkpoint.capture_rng(gen)
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
    checkpoint.restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True), gen)
    assert (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()) == expected
