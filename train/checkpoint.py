"""Checkpoints: everything an exact resume needs, saved atomically, loaded without running code.

A checkpoint holds the model and its EMA, the optimizer and LR schedule, the step, every random state (python,
numpy, torch, CUDA, and the training loop's own generator), the data loader's position (epoch and batch), the
full training config, the model's architecture, and what the model was trained on (dataset version, filter,
text encoder profile). `torch.load(..., weights_only=True)`: a checkpoint file cannot execute code.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

LAST = "last.pt"


def capture_rng(generator: torch.Generator) -> dict:
    state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"bit_generator": state["bit_generator"], "key": torch.from_numpy(state["state"]["key"].astype(
            np.int64)), "pos": int(state["state"]["pos"]), "has_gauss": int(state["has_gauss"]),
            "gauss": float(state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state(),
    }


def restore_rng(state: dict, generator: torch.Generator) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"], "has_gauss": n["has_gauss"], "gauss": n["gauss"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]}})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["generator"])


def save(state: dict, out_dir: str | Path, step: int, *, keep: int = 2) -> Path:
    """Writes `checkpoints/step_N.pt` (atomically) and points `checkpoints/last.pt` at it; keeps the newest
    `keep` step files. Returns the step file."""
    directory = Path(out_dir) / "checkpoints"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{step:07d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    last_tmp = directory / (LAST + ".tmp")
    try:  # a hard link costs no space; fall back to a copy where links are not supported
        last_tmp.unlink(missing_ok=True)
        os.link(path, last_tmp)
    except OSError:
        torch.save(state, last_tmp)
    os.replace(last_tmp, directory / LAST)
    steps = sorted(directory.glob("step_*.pt"), key=lambda p: int(re.findall(r"\d+", p.name)[0]))
    for old in steps[:-max(keep, 1)]:
        old.unlink()
    return path


def load(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's contents.

    Raises:
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=device, weights_only=True)


def resume_path(out_dir: str, resume: str) -> Path | None:
    """The checkpoint to resume from: `resume` is auto (out_dir's last.pt if present), never, or a path.

    Raises:
        FileNotFoundError: an explicit path that does not exist.
    """
    if resume == "never":
        return None
    if resume == "auto":
        last = Path(out_dir) / "checkpoints" / LAST
        return last if last.is_file() else None
    if not Path(resume).is_file():
        raise FileNotFoundError(f"checkpoint to resume from not found: {resume}")
    return Path(resume)


def model_weights(state: dict, *, ema: bool = True) -> dict:
    """The EMA weights when asked for and present, else the raw ones."""
    return state["ema"] if ema and state.get("ema") is not None else state["model"]
