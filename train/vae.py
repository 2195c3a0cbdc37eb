"""A causal 3D convolutional video VAE (in the spirit of MAGVIT-v2 and CogVideoX, kept small and readable).

Causal in time: every convolution pads only on the past side and every norm works per frame, so a latent frame
depends on its own and earlier video frames only. The first frame is therefore encoded on its own, and a clip of
`1 + k * temporal_compression` frames becomes `1 + k` latent frames (an image is a 1-frame video). Space shrinks
by `spatial_compression` in each direction.

    x (B, 3, T, H, W) in [-1, 1] --encode--> DiagonalGaussian over (B, C, 1 + (T-1)/tc, H/sc, W/sc)
    z --decode--> (B, 3, T, H, W)

Trained with a reconstruction loss (L1 or MSE) plus a small KL term (see train/tasks.py). `latent_scale` (a
buffer, so it travels with the weights) brings latents to about unit variance for the DiT; it is measured at
the end of VAE training (`calibrate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEConfig:
    """Architecture. `channel_mult` has one entry per resolution level: log2(spatial_compression) + 1 of them.
    Time is compressed in the first log2(temporal_compression) downsamplings (where frames are largest)."""

    in_channels: int = 3
    latent_channels: int = 4
    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    spatial_compression: int = 8
    temporal_compression: int = 4
    norm_groups: int = 32

    def __post_init__(self):
        self.channel_mult = tuple(self.channel_mult)
        for name in ("spatial_compression", "temporal_compression"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"vae {name} must be a power of two (got {value})")
        if len(self.channel_mult) != self.spatial_downsamples + 1:
            raise ValueError(f"vae channel_mult needs log2(spatial_compression) + 1 = {self.spatial_downsamples + 1} "
                             f"entries (got {len(self.channel_mult)})")
        if self.temporal_downsamples > self.spatial_downsamples:
            raise ValueError("vae temporal_compression cannot exceed spatial_compression (time is compressed "
                             "alongside space, one factor of two per level)")
        if self.base_channels % self.norm_groups:
            raise ValueError(f"vae base_channels ({self.base_channels}) must be a multiple of norm_groups "
                             f"({self.norm_groups})")

    @property
    def spatial_downsamples(self) -> int:
        return int(math.log2(self.spatial_compression))

    @property
    def temporal_downsamples(self) -> int:
        return int(math.log2(self.temporal_compression))

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of a clip's latent.

        Raises:
            ValueError: the clip does not fit the compression (frames != 1 + k*tc, or H, W not multiples of sc).
        """
        tc, sc = self.temporal_compression, self.spatial_compression
        if (frames - 1) % tc or height % sc or width % sc:
            raise ValueError(f"a {frames}x{height}x{width} clip does not fit the VAE: frames must be 1 + k*{tc}, "
                             f"height and width multiples of {sc}")
        return self.latent_channels, (frames - 1) // tc + 1, height // sc, width // sc


VAE_SIZES: dict[str, dict] = {
    "tiny": dict(base_channels=8, channel_mult=(1, 2, 2, 2), num_res_blocks=1, norm_groups=4),  # tests, 0.2M
    "small": dict(base_channels=64, channel_mult=(1, 2, 4, 4), num_res_blocks=1),  # 38M
    "base": dict(base_channels=128, channel_mult=(1, 2, 4, 4), num_res_blocks=2),  # 216M
}


def vae_config(size: str, **overrides) -> VAEConfig:
    """The named size with `overrides` applied (e.g. `latent_channels=16`)."""
    if size not in VAE_SIZES:
        raise ValueError(f"unknown vae size {size!r} (one of {', '.join(VAE_SIZES)})")
    return VAEConfig(**{**VAE_SIZES[size], **overrides})


class FrameNorm(nn.GroupNorm):
    """GroupNorm over each frame separately: normalising across time would let later frames leak backwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = super().forward(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, c, h, w).transpose(1, 2)


class CausalConv3d(nn.Module):
    """A 3D convolution padded on the past side in time (the first frame repeated), centred in space."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.time_pad = kernel - 1
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=(0, kernel // 2, kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x], dim=2)
        return self.conv(x)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = FrameNorm(groups, cin), CausalConv3d(cin, cout)
        self.norm2, self.conv2 = FrameNorm(groups, cout), CausalConv3d(cout, cout)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halves H and W, and T as 1 + 2k -> 1 + k when `time` (a strided causal convolution)."""

    def __init__(self, channels: int, time: bool):
        super().__init__()
        self.conv = CausalConv3d(channels, channels, stride=(2 if time else 1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Doubles H and W, and T as 1 + k -> 1 + 2k when `time`: the first frame stays single, as it was encoded."""

    def __init__(self, channels: int, time: bool):
        super().__init__()
        self.time = time
        self.conv = CausalConv3d(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
        if self.time and x.shape[2] > 1:
            x = torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(2, dim=2)], dim=2)
        return self.conv(x)


def _res_stack(cin: int, cout: int, n: int, groups: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(cin if i == 0 else cout, cout, groups) for i in range(n)])


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = CausalConv3d(cfg.in_channels, chans[0])
        levels, cin = [], chans[0]
        for i, cout in enumerate(chans):
            level = [_res_stack(cin, cout, cfg.num_res_blocks, cfg.norm_groups)]
            if i < len(chans) - 1:
                level.append(Downsample(cout, time=i < cfg.temporal_downsamples))
            levels.append(nn.Sequential(*level))
            cin = cout
        self.levels = nn.Sequential(*levels)
        self.mid = ResBlock(cin, cin, cfg.norm_groups)
        self.norm_out = FrameNorm(cfg.norm_groups, cin)
        self.conv_out = CausalConv3d(cin, 2 * cfg.latent_channels)  # mean and log-variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.levels(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = CausalConv3d(cfg.latent_channels, chans[-1])
        self.mid = ResBlock(chans[-1], chans[-1], cfg.norm_groups)
        levels, cin = [], chans[-1]
        for i in reversed(range(len(chans))):
            level = [_res_stack(cin, chans[i], cfg.num_res_blocks + 1, cfg.norm_groups)]
            if i > 0:
                level.append(Upsample(chans[i], time=i - 1 < cfg.temporal_downsamples))
            levels.append(nn.Sequential(*level))
            cin = chans[i]
        self.levels = nn.Sequential(*levels)
        self.norm_out = FrameNorm(cfg.norm_groups, cin)
        self.conv_out = CausalConv3d(cin, cfg.in_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.levels(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


class DiagonalGaussian:
    """The encoder's posterior N(mean, exp(logvar)) per latent element."""

    def __init__(self, moments: torch.Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def kl(self) -> torch.Tensor:
        """KL divergence to N(0, 1), summed over a latent's elements, averaged over the batch."""
        kl = 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)
        return kl.flatten(1).sum(dim=1).mean()


class VideoVAE(nn.Module):
    """The causal video VAE: `encode`, `decode`, and the scaled-latent helpers the DiT uses."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.register_buffer("latent_scale", torch.tensor(1.0))

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """Args: x (B, 3, T, H, W) in [-1, 1]. Returns: the posterior over unscaled latents."""
        self.cfg.latent_shape(*x.shape[2:])
        return DiagonalGaussian(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (B, C, T', H', W') unscaled latents. Returns: video (B, 3, 1 + (T'-1)*tc, H, W)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        posterior = self.encode(x)
        return self.decode(posterior.sample(generator)), posterior

    @torch.no_grad()
    def calibrate(self, latents: torch.Tensor) -> float:
        """Sets `latent_scale` to 1/std of posterior samples (Stable Diffusion's scale factor); returns it."""
        self.latent_scale.fill_(1.0 / latents.float().std().clamp_min(1e-6).item())
        return float(self.latent_scale)

    def to_diffusion(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_scale

    def from_diffusion(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.latent_scale
