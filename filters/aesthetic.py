"""Aesthetic scores: an open_clip image encoder, L2-normalised embeddings, then a LAION aesthetic head.

Heads, loaded from real weight files:
- `improved`: christophschuhmann/improved-aesthetic-predictor, an MLP 768->1024->128->64->16->1 (Dropouts
  between the first four Linears) over ViT-L/14 embeddings, state-dict keys `layers.N.*`.
- `linear`: LAION-AI/aesthetic-predictor, one Linear (512->1 for ViT-B, 768->1 for ViT-L/14).

The `tiny` profile builds a tiny random ViT from a custom open_clip config registered at run time and a random
head of the same architecture and matching width: offline, fast, and marked as such in every row.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# The spec, the weights' paths and the job's preflight live apart, so the driver checks weights without torch.
from filters.aesthetic_spec import TINY_MODEL, AestheticSpec, WeightsError, preflight, resolve_weight, spec_from_config

__all__ = ["AestheticScorer", "AestheticSpec", "WeightsError", "build_head", "load_clip", "load_head", "preflight",
           "resolve_weight", "spec_from_config"]

TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


class ImprovedAestheticMLP(nn.Module):
    """The improved predictor's MLP; keys `layers.N.*` as in its published file."""

    def __init__(self, width: int = 768):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_head(kind: str, width: int) -> nn.Module:
    """The head module, architecture only (random init)."""
    if kind == "linear":
        return nn.Linear(width, 1)
    if kind == "improved":
        return ImprovedAestheticMLP(width)
    raise ValueError(f"unknown aesthetic head {kind!r} (improved | linear)")


def load_head(kind: str, path: str, width: int) -> nn.Module:
    """The head with its real weights (`weights_only=True`: a weight file cannot run code)."""
    file = resolve_weight(path, what=f"aesthetic head weights ({kind})",
                          how="set aesthetic.head_path to the .pth file (for example sac+logos+ava1-l14-linearMSE.pth "
                              "from christophschuhmann/improved-aesthetic-predictor)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    head = build_head(kind, width)
    head.load_state_dict(state)
    return head.eval()



def load_clip(spec: AestheticSpec, device: str = "cpu"):
    """(model, preprocess) through open_clip's own loader.

    Raises:
        WeightsError: the checkpoint path is missing, or the named weights cannot be downloaded.
    """
    from curate.common.compat import ensure_torchvision, register_open_clip_config

    ensure_torchvision()
    import open_clip

    if spec.tiny:
        register_open_clip_config(TINY_MODEL, TINY_CONFIG)
        torch.manual_seed(0)  # the same tiny model in every worker
        model, _, preprocess = open_clip.create_model_and_transforms(TINY_MODEL, pretrained=None, device=device)
        return model.eval(), preprocess
    pretrained = spec.clip_pretrained
    if spec.clip_is_file:
        pretrained = str(resolve_weight(pretrained, what="open_clip checkpoint",
                                        how="set aesthetic.clip_pretrained to an existing file"))
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(spec.clip_model, pretrained=pretrained,
                                                                     device=device)
    except (RuntimeError, OSError, ValueError) as e:
        raise WeightsError(
            f"cannot load open_clip {spec.clip_model} weights '{spec.clip_pretrained}': {str(e).splitlines()[0]}. "
            "Without network access, download the checkpoint elsewhere and set aesthetic.clip_pretrained to its "
            "path, or run with --profile tiny") from None
    return model.eval(), preprocess


class AestheticScorer:
    """Scores clips from their frames: `__call__(list of frame lists) -> (scores, clip embeddings)`.

    Loads once (`setup`), then batches every frame of the call through the encoder at once.
    """

    def __init__(self, spec: AestheticSpec, device: str | None = None):
        self.spec = spec
        self.device = device
        self.model = self.preprocess = self.head = None

    def setup(self) -> None:
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if not self.spec.tiny:  # the cheap check first: a missing head fails before any CLIP download
            resolve_weight(self.spec.head_path, what=f"aesthetic head weights ({self.spec.head})",
                           how="set aesthetic.head_path to the head's .pth file")
        self.model, self.preprocess = load_clip(self.spec, self.device)
        width = self.model.visual.output_dim
        if self.spec.tiny:
            torch.manual_seed(1)
            self.head = build_head(self.spec.head, width).eval()
        else:
            self.head = load_head(self.spec.head, self.spec.head_path, width)
        self.head.to(self.device)

    def embed(self, images: list) -> np.ndarray:
        """L2-normalised image embeddings (N, D) for PIL images."""
        if not images:
            return np.zeros((0, self.model.visual.output_dim), np.float32)
        batch = torch.stack([self.preprocess(im) for im in images]).to(self.device)
        with torch.inference_mode():
            emb = self.model.encode_image(batch).float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings (N, D) from the same CLIP's text tower (for text search)."""
        import open_clip

        name = TINY_MODEL if self.spec.tiny else self.spec.clip_model
        tokens = open_clip.get_tokenizer(name)(texts).to(self.device)
        with torch.inference_mode():
            emb = self.model.encode_text(tokens).float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    def score_embeddings(self, emb: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.head(torch.from_numpy(emb).to(self.device)).float().cpu().numpy()[:, 0]

    def __call__(self, clips: list[list]) -> tuple[list[float | None], list[list[float] | None]]:
        if self.model is None:
            self.setup()
        flat = [im for frames in clips for im in frames]
        emb = self.embed(flat)
        per_frame = self.score_embeddings(emb) if len(flat) else np.zeros(0)
        scores, embeddings, i = [], [], 0
        for frames in clips:
            n = len(frames)
            if n == 0:
                scores.append(None)
                embeddings.append(None)
                continue
            s = per_frame[i:i + n]
            scores.append(float(s.min() if self.spec.reduce == "min" else s.mean()))
            mean = emb[i:i + n].mean(axis=0)
            embeddings.append((mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32).tolist())
            i += n
        return scores, embeddings
