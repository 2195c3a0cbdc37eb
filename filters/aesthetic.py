"""Aesthetic scores: an open_clip image encoder, L2-normalised embeddings, then a LAION aesthetic head.

Heads, loaded from real weight files:
- `improved`: christophschuhmann/improved-aesthetic-predictor, an MLP 768->1024->128->64->16->1 (Dropouts
  between the first four Linears) over ViT-L/14 embeddings, state-dict keys `layers.N.*`.
- `linear`: LAION-AI/aesthetic-predictor, one Linear (512->1 for ViT-B, 768->1 for ViT-L/14).

The `tiny` profile builds a tiny random ViT from a custom open_clip config registered at run time and a random
head of the same architecture and matching width: offline, fast, and marked as such in every row.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

TINY_MODEL = "vidcurate-tiny-vit"
TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


class WeightsError(FileNotFoundError):
    """A weight file is missing or cannot be fetched; the message names it and says how to get it."""


@dataclass(frozen=True)
class AestheticSpec:
    """What to load. `clip_pretrained` is an open_clip tag (needs a download) or a local checkpoint path."""

    clip_model: str = "ViT-L-14"
    clip_pretrained: str = "openai"
    head: str = "improved"  # improved | linear
    head_path: str = ""
    reduce: str = "mean"  # mean | min over a clip's frames
    tiny: bool = False

    @property
    def name(self) -> str:
        if self.tiny:
            return f"{TINY_MODEL}+random-{self.head}-head (tiny profile)"
        return f"{self.clip_model}/{Path(self.clip_pretrained).name}+{self.head}:{Path(self.head_path).name}"


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


def resolve_weight(path_or_url: str, *, what: str, how: str) -> Path:
    """A local file for a path or URL (downloaded once into ~/.cache/vidcurate).

    Raises:
        WeightsError: the path is empty or missing, or the URL cannot be fetched.
    """
    if not path_or_url:
        raise WeightsError(f"no {what} configured: {how}")
    if path_or_url.startswith(("http://", "https://")):
        cache = Path(os.environ.get("VIDCURATE_CACHE", Path.home() / ".cache" / "vidcurate"))
        target = cache / Path(path_or_url.split("?")[0]).name
        if not target.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(path_or_url, timeout=60) as r, \
                        tempfile.NamedTemporaryFile(dir=cache, delete=False) as tmp:
                    tmp.write(r.read())
                os.replace(tmp.name, target)
            except OSError as e:
                raise WeightsError(f"cannot download {what} from {path_or_url} ({e}): {how}") from None
        return target
    p = Path(path_or_url).expanduser()
    if not p.is_file():
        raise WeightsError(f"{what} not found: {p}. {how}")
    return p


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
    if os.sep in pretrained or pretrained.endswith((".bin", ".pt", ".pth", ".safetensors")):
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


def spec_from_config(aesthetic_cfg, profile: str) -> AestheticSpec:
    """The spec for the config's `scoring.aesthetic` section under `profile`."""
    return AestheticSpec(clip_model=aesthetic_cfg.clip_model, clip_pretrained=aesthetic_cfg.clip_pretrained,
                         head=aesthetic_cfg.head, head_path=aesthetic_cfg.head_path, reduce=aesthetic_cfg.reduce,
                         tiny=profile == "tiny")


def preflight(spec: AestheticSpec) -> None:
    """Makes sure the weights can be had before a job starts (downloads them once into the caches).

    Raises:
        WeightsError: what is missing and how to get it.
    """
    if spec.tiny:
        return
    resolve_weight(spec.head_path, what=f"aesthetic head weights ({spec.head})",
                   how="set scoring.aesthetic.head_path to the head's .pth file, or run with --profile tiny")
    pretrained = spec.clip_pretrained
    if os.sep in pretrained or pretrained.endswith((".bin", ".pt", ".pth", ".safetensors")):
        resolve_weight(pretrained, what="open_clip checkpoint",
                       how="set scoring.aesthetic.clip_pretrained to an existing file")
        return
    from curate.common.compat import ensure_torchvision

    ensure_torchvision()
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.clip_model, pretrained)
    if not cfg:
        raise WeightsError(f"open_clip has no weights '{pretrained}' for {spec.clip_model} "
                           f"(see open_clip.list_pretrained())")
    try:
        open_clip.download_pretrained(cfg)
    except Exception as e:  # noqa: BLE001 - hub, HTTP and file errors alike
        raise WeightsError(
            f"cannot get open_clip {spec.clip_model} weights '{pretrained}' ({type(e).__name__}). Without network "
            "access, download the checkpoint elsewhere and set scoring.aesthetic.clip_pretrained to its path, "
            "or run with --profile tiny") from None
