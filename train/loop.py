"""The training loop, shared by the VAE and DiT stages; read it top to bottom.

AdamW with linear warm-up, bf16 autocast on GPU, gradient clipping, an EMA of the weights, logging of loss and
samples/s (printed and appended to `out_dir/log.jsonl`), checkpoints every `ckpt_every` steps and at the end,
and exact resume: after a resume, the next step's loss equals the uninterrupted run's (same weights, optimizer
moments, random states and data position).
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from train import checkpoint
from train.config import TrainConfig
from train.data import make_dataset, make_loader
from train.distributed import Env, init_env, unwrap
from train.tasks import TASKS


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def autocast(env: Env, precision: str):
    """bf16 autocast on GPU by default (no loss scaling needed, unlike fp16); fp32 on CPU unless asked."""
    use_bf16 = precision == "bf16" or (precision == "auto" and env.device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=env.device.type, dtype=torch.bfloat16)


class Logger:
    """Averages metrics between log lines; rank 0 prints them and appends them to log.jsonl."""

    def __init__(self, out_dir: str, env: Env, total_steps: int, echo: Callable[[str], None]):
        self.env, self.total, self.echo = env, total_steps, echo
        self.path = Path(out_dir) / "log.jsonl"
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = self.samples = 0
        self.started = time.perf_counter()

    def add(self, samples: int, metrics: dict) -> None:
        """Metrics may be tensors: they are summed on their device and read at `flush` (no sync every step)."""
        for k, v in metrics.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else v
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        self.samples += samples

    def flush(self, step: int, lr: float) -> dict:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        row = {"step": step, **{k: self.env.mean(float(v) / self.count) for k, v in self.sums.items()},
               "lr": lr, "samples_per_s": self.samples * self.env.world_size / elapsed, "time": time.time()}
        if self.env.is_main:
            extras = "  ".join(f"{k} {row[k]:.4g}" for k in self.sums if k != "loss")
            self.echo(f"step {step}/{self.total}  loss {row['loss']:.4f}  {extras}  lr {lr:.2e}  "
                      f"{row['samples_per_s']:.1f} samples/s".replace("    ", "  "))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        self.env.report(row)
        self.reset()
        return row


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def fit(cfg: TrainConfig, kind: str, *, backend: str = "auto", echo: Callable[[str], None] | None = None) -> dict:
    """Trains the `kind` stage ("vae" or "dit") as `cfg` says.

    Args:
        cfg: the checked training config.
        kind: "vae" or "dit".
        backend: "auto" (one process, or torchrun when launched by it) or "ray" (inside a Ray Train worker).
        echo: where log lines go (print by default).
    Returns:
        {"step", "loss" (of the last log line), "checkpoint" (path), "out_dir"}.
    Raises:
        ConfigError, FileNotFoundError, WeightsError: a bad config, a missing checkpoint or weights.
    """
    echo = echo or (lambda line: print(line, flush=True))
    env = init_env(cfg.run.device, backend)
    seed_everything(cfg.run.seed + env.rank)

    task = TASKS[kind](cfg, env.device)
    model = task.model.to(env.device)
    ema = copy.deepcopy(model).requires_grad_(False).eval() if cfg.optim.ema_decay > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                                  weight_decay=cfg.optim.weight_decay)
    warmup = max(cfg.optim.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    # The loop's own generator draws every noise and timestep: its state in the checkpoint makes resume exact.
    generator = torch.Generator(device=env.device).manual_seed(cfg.run.seed * 100_003 + env.rank)

    step, position = 0, (0, 0)
    resume = checkpoint.resume_path(cfg.run.out_dir, cfg.run.resume)
    if resume is not None:
        state = checkpoint.load(resume, env.device)
        if state["kind"] != kind:
            raise ValueError(f"cannot resume {kind} training from a {state['kind']} checkpoint ({resume})")
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.restore_rng(state["rng"], generator)
        step = state["step"]
        position = (state["data"]["epoch"], state["data"]["position"] + 1)  # the batch after the last one used
        echo(f"resumed {kind} from {resume} at step {step}")
    dataset = make_dataset(cfg.data, seed=cfg.run.seed)
    if resume is not None and (state["dataset"]["clips_version"], state["dataset"]["filter"]) != (
            dataset.version, cfg.data.filter):
        echo(f"warning: resuming on another selection (was clips.lance v{state['dataset']['clips_version']} "
             f"filter {state['dataset']['filter']!r}): the data order will not continue the earlier run's")

    loader = make_loader(dataset, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                         seed=cfg.run.seed, rank=env.rank, world_size=env.world_size, start=position,
                         pin_memory=env.device.type == "cuda")
    batches = iter(loader)
    trained = env.wrap(model)
    trained.train()
    n_params = sum(p.numel() for p in model.parameters())
    if env.is_main:
        echo(f"{kind}: {n_params / 1e6:.2f}M parameters, {len(dataset)} clips from {cfg.data.dataset} "
             f"(clips.lance v{dataset.version}, filter {cfg.data.filter!r}), {env.world_size} rank(s) on "
             f"{env.device}, text encoder profile {cfg.text.profile}")
        if getattr(dataset, "missing", 0):
            echo(f"warning: {dataset.missing} selected clips have no cached latents in {cfg.data.latents}: skipped")
    logger = Logger(cfg.run.out_dir, env, cfg.run.steps, echo)
    last_row: dict = {}
    saved = None

    def save_checkpoint(extra: dict | None = None) -> Path | None:
        if not env.is_main:
            return None
        state = {
            "kind": kind, "step": step, "config": cfg.to_dict(), **task.meta(),
            "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": checkpoint.capture_rng(generator), "data": {"epoch": position[0], "position": position[1]},
            "dataset": {"uri": cfg.data.dataset, "ref": cfg.data.version, "clips_version": dataset.version,
                        "filter": cfg.data.filter, "latents": cfg.data.latents},
            "model_profile": cfg.text.profile, **(extra or {}),
        }
        return checkpoint.save(state, cfg.run.out_dir, step, keep=cfg.run.keep_checkpoints)

    while step < cfg.run.steps:
        batch = next(batches)
        with autocast(env, cfg.run.precision):
            loss, metrics = task.loss(trained, batch, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema_update(ema, model, cfg.optim.ema_decay)
        step += 1
        position = batch["position"]
        logger.add(len(batch["clip_id"]), {"loss": loss, **metrics})
        if step % cfg.run.log_every == 0 or step == cfg.run.steps:
            last_row = logger.flush(step, scheduler.get_last_lr()[0])
        if step == cfg.run.steps:
            finished = task.finish([unwrap(trained)] + ([ema] if ema is not None else []), batches)
            if finished and env.is_main:
                echo("  ".join(f"{k} {v:.4g}" for k, v in finished.items()))
            saved = save_checkpoint(finished)
        elif step % cfg.run.ckpt_every == 0:
            saved = save_checkpoint()
    del batches  # stops the loader's worker processes now rather than at garbage collection
    env.close()
    final = Path(saved).parent / checkpoint.LAST if saved is not None else resume  # resume: nothing left to do
    if final is not None and env.is_main:
        echo(f"checkpoint: {final}")
    return {"step": step, "loss": last_row.get("loss"), "checkpoint": str(final) if final is not None else None,
            "out_dir": cfg.run.out_dir}
