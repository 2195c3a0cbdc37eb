"""The trainer's configuration: one dataclass per section, loaded from YAML over the defaults.

    data:   which clips (dataset, version or tag, filter), frames, buckets, captions, loader  (train/data.py)
    text:   caption encoder profile and weights                                               (train/text.py)
    vae:    size + architecture overrides, loss weights, and the checkpoint the DiT stage uses
    dit:    size + architecture overrides, timestep sampling
    optim:  AdamW, warm-up, gradient clipping, EMA
    run:    steps, logging, checkpoints, resume, seed, device, precision
    sample: Euler steps, guidance, shift, clip shape and fps

A YAML file only holds what it changes; unknown fields and wrong types are errors that name the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from curate.common.typed_config import ConfigError
from curate.common.typed_config import build as from_dict
from train.data import DataConfig, bucket_sizes
from train.dit import DiTConfig, dit_config
from train.text import TextConfig
from train.vae import VAEConfig, vae_config


@dataclass
class VAETrainConfig:
    size: str = "small"  # a key of train.vae.VAE_SIZES
    model: dict = field(default_factory=dict)  # VAEConfig overrides, e.g. {spatial_compression: 8}
    recon_loss: str = "l1"  # l1 | mse
    kl_weight: float = 1e-6
    calibrate_batches: int = 4  # batches whose latents set latent_scale at the end of VAE training
    checkpoint: str | None = None  # the trained VAE the DiT stage encodes with (and sampling decodes with)

    def build(self) -> VAEConfig:
        return vae_config(self.size, **self.model)


@dataclass
class DiTTrainConfig:
    size: str = "S"  # a key of train.dit.DIT_SIZES
    model: dict = field(default_factory=dict)  # DiTConfig overrides, e.g. {attention: factorised}
    timestep_mean: float = 0.0  # logit-normal timestep sampling
    timestep_std: float = 1.0

    def build(self, in_channels: int, text_dim: int) -> DiTConfig:
        return dit_config(self.size, **{**self.model, "in_channels": in_channels, "text_dim": text_dim})


@dataclass
class OptimConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    ema_decay: float = 0.9999  # 0 turns EMA off


@dataclass
class RunConfig:
    out_dir: str = "runs/train"  # checkpoints/ and log.jsonl go here (shared storage for many nodes)
    steps: int = 1000
    log_every: int = 10
    ckpt_every: int = 500
    keep_checkpoints: int = 2  # step_*.pt files kept besides last.pt
    resume: str = "auto"  # auto (out_dir's last.pt if any) | never | a checkpoint path
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32


@dataclass
class SampleConfig:
    steps: int = 30
    cfg_scale: float = 5.0
    shift: float = 1.0
    num_frames: int | None = None  # None: data.num_frames
    height: int | None = None  # None: the first bucket's
    width: int | None = None
    fps: float = 8.0


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    vae: VAETrainConfig = field(default_factory=VAETrainConfig)
    dit: DiTTrainConfig = field(default_factory=DiTTrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(_plain(self.to_dict()), sort_keys=False)

    def check(self) -> TrainConfig:
        """Cross-section checks (each section checks itself when built).

        Raises:
            ConfigError: the frames or buckets do not fit the VAE's compression and the DiT's patches.
        """
        try:
            vae = self.vae.build()
            dit = self.dit.build(vae.latent_channels, 1)
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None
        tc = vae.temporal_compression
        if (self.data.num_frames - 1) % tc:
            raise ConfigError(f"data.num_frames must be 1 + k * {tc} (the VAE's temporal compression): "
                              f"got {self.data.num_frames}")
        latent_t = (self.data.num_frames - 1) // tc + 1
        if latent_t % dit.patch_size[0]:
            raise ConfigError(f"{latent_t} latent frames are not divisible by the DiT's time patch "
                              f"{dit.patch_size[0]}")
        side = vae.spatial_compression * dit.patch_size[1]
        for h, w in bucket_sizes(self.data):
            if h % side or w % side:
                raise ConfigError(f"bucket {h}x{w} is not a multiple of {side} (VAE spatial compression x DiT "
                                  "patch): set data.bucket_multiple or data.buckets")
        return self


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _set(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def load_config(path: str | Path | None = None, overrides: dict | None = None,
                sets: list[str] | None = None) -> TrainConfig:
    """The defaults, then the YAML file, then `overrides` ({"data.filter": ...}), then `sets` ("key=value",
    the value read as YAML), checked.

    Raises:
        ConfigError: see `from_dict` and `TrainConfig.check`; a `sets` item without "=".
    """
    tree = yaml.safe_load(Path(path).read_text()) if path else {}
    tree = tree or {}
    for key, value in (overrides or {}).items():
        _set(tree, key, value)
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set wants key=value (got {item!r})")
        key, value = item.split("=", 1)
        _set(tree, key.strip(), yaml.safe_load(value))
    return from_dict(TrainConfig, tree).check()


def config_from_checkpoint(tree: dict) -> TrainConfig:
    """The config a checkpoint was trained with (its `config` entry)."""
    return from_dict(TrainConfig, tree)
