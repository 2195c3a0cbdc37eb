"""What the aesthetic scorer loads, and whether its weights can be had: no torch here, so the job's driver checks
a run's weights (`preflight`) without importing torch (1.3 s of every job's start on this machine); the models
themselves are in filters/aesthetic.py.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TINY_MODEL = "vidcurate-tiny-vit"


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
    def clip_is_file(self) -> bool:
        """`clip_pretrained` names a local checkpoint (a path, or a weights file's name), not an open_clip tag."""
        p = self.clip_pretrained
        return os.sep in p or p.endswith((".bin", ".pt", ".pth", ".safetensors"))

    @property
    def name(self) -> str:
        if self.tiny:
            return f"{TINY_MODEL}+random-{self.head}-head (tiny profile)"
        return f"{self.clip_model}/{Path(self.clip_pretrained).name}+{self.head}:{Path(self.head_path).name}"


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
    if spec.clip_is_file:
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
