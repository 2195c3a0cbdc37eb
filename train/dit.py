"""A latent video diffusion transformer (after facebookresearch/DiT, extended to video and text).

    latents (B, C, T, H, W) --3D patch embed--> tokens (B, T/pt * H/ph * W/pw, D) + 3D sin-cos positions
    blocks: self-attention (full over all tokens, or factorised: within each frame, then across frames at each
            position), cross-attention to the caption's token embeddings, MLP; adaLN-Zero modulation from
            the timestep (plus the pooled caption)
    final adaLN + linear --unpatchify--> velocity (B, C, T, H, W)

Positions are computed for each input's grid, so one model trains on every aspect-ratio bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiTConfig:
    """Architecture. `in_channels` and `text_dim` come from the VAE and the text encoder."""

    in_channels: int = 4
    text_dim: int = 768
    patch_size: tuple[int, int, int] = (1, 2, 2)  # time, height, width
    hidden_size: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    attention: str = "full"  # full | factorised
    qk_norm: bool = True  # RMS-normalised queries and keys: steadier attention logits in bf16

    def __post_init__(self):
        self.patch_size = tuple(self.patch_size)
        if self.attention not in ("full", "factorised"):
            raise ValueError(f"dit attention must be 'full' or 'factorised' (got {self.attention!r})")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"dit hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")


DIT_SIZES: dict[str, dict] = {
    "tiny": dict(hidden_size=64, depth=2, num_heads=2),  # tests: 0.3M with a 768-wide text encoder
    "S": dict(hidden_size=384, depth=12, num_heads=6),  # ~40M
    "B": dict(hidden_size=768, depth=12, num_heads=12),  # ~160M
    "L": dict(hidden_size=1024, depth=24, num_heads=16),  # ~560M
}


def dit_config(size: str, **overrides) -> DiTConfig:
    """The named size with `overrides` applied (e.g. `attention="factorised"`)."""
    if size not in DIT_SIZES:
        raise ValueError(f"unknown dit size {size!r} (one of {', '.join(DIT_SIZES)})")
    return DiTConfig(**{**DIT_SIZES[size], **overrides})


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    freqs = torch.exp(-math.log(10000.0) * torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.double()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """(T*H*W, dim) fixed positional embedding: a third of the channels per axis (the rest zero)."""
    axis_dim = dim // 3 // 2 * 2
    t, h, w = (torch.arange(n) for n in grid)
    tt, hh, ww = torch.meshgrid(t, h, w, indexing="ij")
    parts = [sincos_1d(axis_dim, a.reshape(-1)) for a in (tt, hh, ww)]
    pad = torch.zeros(tt.numel(), dim - 3 * axis_dim)
    return torch.cat([*parts, pad], dim=1)


class TimestepEmbedder(nn.Module):
    """t in [0, 1] -> sinusoidal features (of 1000 t, the scale DiT's embedding was designed for) -> MLP."""

    def __init__(self, hidden: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sincos_1d(self.freq_dim, 1000.0 * t).to(t.device, self.mlp[0].weight.dtype))


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None, cross-attention otherwise."""

    def __init__(self, dim: int, heads: int, qk_norm: bool, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.q_norm = nn.RMSNorm(dim // heads) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(dim // heads) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        context = x if context is None else context
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn_mask = mask[:, None, None, :] if mask is not None else None  # (B, 1, 1, L): keys to attend to
        q, k = self.q_norm(q.float()).to(v.dtype), self.k_norm(k.float()).to(v.dtype)  # norms in fp32 under bf16
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))


class DiTBlock(nn.Module):
    """Self-attention (one full, or spatial then temporal), cross-attention to text, MLP.

    adaLN-Zero: each self-attention and the MLP get a shift, scale and gate from the conditioning vector, the
    gates starting at zero; the cross-attention's output projection starts at zero (as in PixArt-alpha and
    Open-Sora's STDiT). So at initialisation each residual branch adds exactly zero: every block is the identity.
    """

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.hidden_size
        self.layouts = ["full"] if cfg.attention == "full" else ["space", "time"]
        self.self_attn = nn.ModuleList(Attention(d, cfg.num_heads, cfg.qk_norm) for _ in self.layouts)
        self.norms = nn.ModuleList(nn.LayerNorm(d, elementwise_affine=False, eps=1e-6) for _ in self.layouts)
        self.cross_norm = nn.LayerNorm(d, eps=1e-6)
        self.cross_attn = Attention(d, cfg.num_heads, cfg.qk_norm)
        self.mlp_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = _mlp(d, int(d * cfg.mlp_ratio))
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(d, 3 * (len(self.layouts) + 1) * d))

    @staticmethod
    def _attend(attn: Attention, x: torch.Tensor, layout: str, grid: tuple[int, int, int]) -> torch.Tensor:
        if layout == "full":
            return attn(x)
        b, _, d = x.shape
        t, hw = grid[0], grid[1] * grid[2]
        x = x.view(b, t, hw, d)
        if layout == "space":  # each frame's tokens among themselves
            return attn(x.reshape(b * t, hw, d)).view(b, t * hw, d)
        x = x.transpose(1, 2).reshape(b * hw, t, d)  # each position across frames
        return attn(x).view(b, hw, t, d).transpose(1, 2).reshape(b, t * hw, d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, grid: tuple[int, int, int], text: torch.Tensor,
                text_mask: torch.Tensor) -> torch.Tensor:
        mods = self.adaLN(c).chunk(3 * (len(self.layouts) + 1), dim=1)
        for i, layout in enumerate(self.layouts):
            shift, scale, gate = mods[3 * i:3 * i + 3]
            h = modulate(self.norms[i](x), shift, scale)
            x = x + gate.unsqueeze(1) * self._attend(self.self_attn[i], h, layout, grid)
        x = x + self.cross_attn(self.cross_norm(x), text, text_mask)
        shift, scale, gate = mods[-3:]
        return x + gate.unsqueeze(1) * self.mlp(modulate(self.mlp_norm(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, out)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """Predicts the rectified-flow velocity of noisy latents, given the timestep and the caption."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.patch_embed = nn.Conv3d(cfg.in_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.t_embed = TimestepEmbedder(d)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.pooled_proj = nn.Linear(cfg.text_dim, d)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final = FinalLayer(d, math.prod(cfg.patch_size) * cfg.in_channels)
        self._pos_cache: dict = {}
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation: Xavier linears, zeroed modulations and output (adaLN-Zero), and zeroed
        cross-attention output projections (PixArt-alpha's), so that every block starts as the identity."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        for lin in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN[-1].weight)
            nn.init.zeros_(block.adaLN[-1].bias)
            nn.init.zeros_(block.cross_attn.proj.weight)
            nn.init.zeros_(block.cross_attn.proj.bias)
        for lin in (self.final.adaLN[-1], self.final.linear):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def positions(self, grid: tuple[int, int, int], device, dtype) -> torch.Tensor:
        key = (grid, device, dtype)
        if key not in self._pos_cache:
            self._pos_cache[key] = sincos_3d(self.cfg.hidden_size, grid).to(device, dtype)
        return self._pos_cache[key]

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        pt, ph, pw = self.cfg.patch_size
        t, h, w = grid
        c = self.cfg.in_channels
        x = x.view(x.shape[0], t, h, w, c, pt, ph, pw)
        return x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(x.shape[0], c, t * pt, h * ph, w * pw)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                text_pooled: torch.Tensor) -> torch.Tensor:
        """Args:
            x: noisy latents (B, C, T, H, W); T, H, W divisible by the patch size.
            t: timesteps (B,) in [0, 1] (1 is pure noise).
            text: caption token embeddings (B, L, text_dim); text_mask (B, L) true for real tokens;
                text_pooled (B, text_dim).
        Returns:
            The predicted velocity (noise - data), shaped like x.
        """
        tokens = self.patch_embed(x)
        grid = tuple(tokens.shape[2:])
        tokens = tokens.flatten(2).transpose(1, 2)
        tokens = tokens + self.positions(grid, tokens.device, tokens.dtype)
        c = self.t_embed(t) + self.pooled_proj(text_pooled)
        context = self.text_proj(text)
        for block in self.blocks:
            tokens = block(tokens, c, grid, context, text_mask)
        return self.unpatchify(self.final(tokens, c), grid)


def flops_per_sample(cfg: DiTConfig, grid: tuple[int, int, int], text_tokens: int) -> float:
    """Training FLOPs (forward + backward = 3x forward) of one sample with a token grid (T, H, W), for model
    FLOPs utilisation: the matmuls and attention of the blocks; embeddings, norms and modulation left out."""
    d, n, L = cfg.hidden_size, math.prod(grid), text_tokens
    t, hw = grid[0], grid[1] * grid[2]
    if cfg.attention == "full":
        self_attn = 2 * n * 4 * d * d + 4 * n * n * d  # projections, then QK^T and AV
    else:
        self_attn = 2 * 2 * n * 4 * d * d + 4 * t * hw * hw * d + 4 * hw * t * t * d
    cross_attn = 2 * n * 2 * d * d + 2 * L * 2 * d * d + 4 * n * L * d
    mlp = 2 * n * 2 * cfg.mlp_ratio * d * d
    return 3.0 * cfg.depth * (self_attn + cross_attn + mlp)
