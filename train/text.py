"""The frozen caption encoder: an open_clip text tower giving per-token embeddings, a mask and a pooled vector.

`default` profile: a real open_clip model by name and pretrained tag (or a local checkpoint path) through
open_clip's own loader; weights that cannot be had are an error naming them, never a silent random model.
`tiny` profile: a tiny randomly initialised text tower of the same architecture (a custom open_clip config
registered at run time, seeded so every process builds the same one), for tests and offline demos.
The profile is recorded in every checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

TINY_TEXT_MODEL = "vidcurate-tiny-text"
TINY_TEXT_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
PROFILES = ("default", "tiny")


class WeightsError(FileNotFoundError):
    """Text encoder weights are missing or cannot be fetched; the message names them and how to get them."""


@dataclass
class TextConfig:
    """Which caption encoder. `pretrained`: an open_clip tag (downloaded once) or a local checkpoint file."""

    profile: str = "default"  # default | tiny
    model: str = "ViT-L-14"
    pretrained: str = "openai"

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"text profile must be one of {PROFILES} (got {self.profile!r})")

    @property
    def name(self) -> str:
        if self.profile == "tiny":
            return f"{TINY_TEXT_MODEL} (tiny profile, random)"
        return f"{self.model}/{Path(self.pretrained).name}"


class TextEncoder(nn.Module):
    """Frozen open_clip text tower: `captions -> (tokens (B, L, D), mask (B, L), pooled (B, D))`.

    `tokens` are the final layer-normed hidden states (CLIP's causal transformer, so each token has seen the
    ones before it); `mask` is true up to and including the end-of-text token; `pooled` is the end-of-text
    state, the one CLIP projects.
    """

    def __init__(self, clip_model: nn.Module, tokenizer, name: str):
        super().__init__()
        tower = getattr(clip_model, "text", clip_model)  # CustomTextCLIP keeps the tower in `.text`
        missing = [a for a in ("token_embedding", "positional_embedding", "transformer", "ln_final")
                   if not hasattr(tower, a)]
        if missing:
            raise ValueError(f"{name}: only open_clip's own text transformer is supported (no {missing[0]})")
        self.tower = tower
        self.tokenizer = tokenizer
        self.name = name
        self.dim = tower.ln_final.normalized_shape[0]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # frozen: stays in eval mode inside a model put in training mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = self.tower.positional_embedding.device
        ids = self.tokenizer(list(captions)).to(device)
        x = self.tower.token_embedding(ids) + self.tower.positional_embedding[: ids.shape[1]]
        attn_mask = getattr(self.tower, "attn_mask", None)
        x = self.tower.ln_final(self.tower.transformer(x, attn_mask=attn_mask))
        eot = ids.argmax(dim=-1)  # the end-of-text token has the highest id in CLIP's vocabulary
        mask = torch.arange(ids.shape[1], device=device)[None] <= eot[:, None]
        return x, mask, x[torch.arange(x.shape[0], device=device), eot]



def load_text_encoder(cfg: TextConfig, device: torch.device | str = "cpu") -> TextEncoder:
    """The frozen encoder for `cfg`, on `device`.

    Raises:
        WeightsError: a checkpoint path that does not exist, or named weights that cannot be downloaded.
    """
    from curate.common.compat import ensure_torchvision, register_open_clip_config

    ensure_torchvision()
    import open_clip

    if cfg.profile == "tiny":
        register_open_clip_config(TINY_TEXT_MODEL, TINY_TEXT_CONFIG)
        with torch.random.fork_rng(devices=[]):  # the same tiny tower everywhere, without moving the caller's RNG
            torch.manual_seed(0)
            model = open_clip.create_model(TINY_TEXT_MODEL, pretrained=None)
        return TextEncoder(model, open_clip.get_tokenizer(TINY_TEXT_MODEL), cfg.name).to(device)
    pretrained = cfg.pretrained
    if not pretrained:
        raise WeightsError(f"no text encoder weights configured for {cfg.model}: set text.pretrained to an "
                           "open_clip tag or a checkpoint file, or use text.profile: tiny")
    if os.sep in pretrained or pretrained.endswith((".bin", ".pt", ".pth", ".safetensors")):
        if not Path(pretrained).expanduser().is_file():
            raise WeightsError(f"text encoder checkpoint not found: {pretrained}. Download the open_clip "
                               f"{cfg.model} weights and set text.pretrained to the file")
        pretrained = str(Path(pretrained).expanduser())
    try:
        model = open_clip.create_model(cfg.model, pretrained=pretrained)
    except Exception as e:  # noqa: BLE001 - hub, HTTP, file and config errors alike
        raise WeightsError(
            f"cannot load open_clip {cfg.model} weights '{cfg.pretrained}' ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Without network access, download the checkpoint "
            "elsewhere and set text.pretrained to its path, or use text.profile: tiny") from None
    if hasattr(model, "visual"):
        del model.visual  # only the text tower is used: free the image tower's memory
    return TextEncoder(model, open_clip.get_tokenizer(cfg.model), cfg.name).to(device)
