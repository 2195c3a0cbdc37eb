"""What a training step computes, for each of the two stages; the loop in train/loop.py is shared.

A task owns the model being trained (`model`), turns a batch into a loss (`loss`), does any end-of-training
work (`finish`), and says what its checkpoints should record besides the weights (`meta`).

- `VAETask`: reconstruction (L1 or MSE) + KL on decoded clips; at the end, measures `latent_scale`.
- `DiTTask`: rectified flow on VAE latents (encoded on the fly by the frozen VAE, or read from the latents
  cache) conditioned on the frozen text encoder's caption embeddings.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from train import checkpoint
from train.config import ConfigError, TrainConfig
from train.dit import DiT, DiTConfig
from train.flow import flow_loss
from train.text import TextEncoder, load_text_encoder
from train.vae import VAEConfig, VideoVAE


def load_vae(path: str, device: torch.device | str = "cpu", *, ema: bool = True) -> VideoVAE:
    """A trained VAE from its checkpoint (EMA weights when present), frozen, in eval mode.

    Raises:
        FileNotFoundError: no such checkpoint. ValueError: not a VAE checkpoint.
    """
    state = checkpoint.load(path, device)
    if state.get("kind") != "vae":
        raise ValueError(f"{path} is a {state.get('kind')!r} checkpoint, not a VAE one")
    vae = VideoVAE(VAEConfig(**state["model_config"]))
    vae.load_state_dict(checkpoint.model_weights(state, ema=ema))
    return vae.to(device).eval().requires_grad_(False)


class VAETask:
    kind = "vae"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.model_cfg = cfg.vae.build()
        self.model = VideoVAE(self.model_cfg)

    def loss(self, model: nn.Module, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        x = batch["video"].to(self.device, non_blocking=True)
        recon, posterior = model(x, generator)
        recon_fn = F.l1_loss if self.cfg.vae.recon_loss == "l1" else F.mse_loss
        rec = recon_fn(recon.float(), x.float())
        kl = posterior.kl().float()
        return rec + self.cfg.vae.kl_weight * kl, {"recon": rec.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def finish(self, models: list[nn.Module], batches) -> dict:
        """Measures latent_scale on a few batches with the weights that will be used (EMA when kept), on
        posterior samples: what the DiT is trained on."""
        use = models[-1]
        generator = torch.Generator(device=self.device).manual_seed(self.cfg.run.seed)
        latents = [use.encode(next(batches)["video"].to(self.device)).sample(generator)
                   for _ in range(max(self.cfg.vae.calibrate_batches, 1))]
        scale = use.calibrate(torch.cat([z.flatten() for z in latents]))
        for m in models:
            m.latent_scale.fill_(scale)
        return {"latent_scale": scale}

    def meta(self) -> dict:
        return {"model_config": dataclasses.asdict(self.model_cfg)}


class DiTTask:
    kind = "dit"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        if not cfg.vae.checkpoint:
            raise ConfigError("the DiT stage needs a trained VAE: set vae.checkpoint (or --vae) to its checkpoint")
        self.cfg, self.device = cfg, device
        self.vae = load_vae(cfg.vae.checkpoint, device)
        self.text: TextEncoder = load_text_encoder(cfg.text, device)
        self.model_cfg: DiTConfig = cfg.dit.build(self.vae.cfg.latent_channels, self.text.dim)
        self.model = DiT(self.model_cfg)

    @torch.no_grad()
    def latents(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """Scaled latents of the batch: a posterior sample, from the cache or encoded now."""
        if "latent_mean" in batch:
            mean = batch["latent_mean"].to(self.device, non_blocking=True)
            std = batch["latent_std"].to(self.device, non_blocking=True)
            z = mean + std * torch.randn(mean.shape, generator=generator, device=self.device)
        else:
            z = self.vae.encode(batch["video"].to(self.device, non_blocking=True)).sample(generator)
        return self.vae.to_diffusion(z)

    def loss(self, model: nn.Module, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        z = self.latents(batch, generator)
        tokens, mask, pooled = self.text(batch["caption"])
        loss = flow_loss(lambda x, t: model(x, t, tokens, mask, pooled), z, generator=generator,
                         t_mean=self.cfg.dit.timestep_mean, t_std=self.cfg.dit.timestep_std)
        return loss, {}

    def finish(self, models: list[nn.Module], batches) -> dict:
        return {}

    def meta(self) -> dict:
        return {"model_config": dataclasses.asdict(self.model_cfg), "vae_checkpoint": self.cfg.vae.checkpoint,
                "text_encoder": self.text.name, "model_profile": self.cfg.text.profile}


TASKS = {"vae": VAETask, "dit": DiTTask}
