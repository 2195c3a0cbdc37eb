"""Where the training loop runs: one device, `torchrun` DDP, or Ray Train workers; the loop is the same.

- One process (the default): the configured device, no process group.
- `torchrun --nproc-per-node N -m train dit ...`: detected from WORLD_SIZE/RANK/LOCAL_RANK; NCCL on GPUs,
  gloo on CPUs; the model is wrapped in DistributedDataParallel.
- `python -m train dit --ray-workers N [--gpu] [--address ...]`: `ray.train.torch.TorchTrainer` runs the
  same `fit` on N workers; Ray sets up the process group, `prepare_model` wraps the model.

Each rank reads its own shard of the batches (train/data.py), rank 0 alone logs and writes checkpoints, so the
run's `out_dir` must be storage every node can reach (a shared filesystem) when workers span nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Env:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "single"  # single | torchrun | ray

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model as the backend trains it (DDP across ranks)."""
        if self.backend == "ray":
            import ray.train.torch

            return ray.train.torch.prepare_model(model, move_to_device=False)
        if self.backend == "torchrun":
            ids = [self.local_rank] if self.device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    def mean(self, value: float) -> float:
        """The mean of `value` over ranks (for logging)."""
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def close(self) -> None:
        """Ends the process group this module started (torchrun); Ray Train ends its own."""
        if self.backend == "torchrun" and dist.is_initialized():
            dist.destroy_process_group()

    def report(self, metrics: dict) -> None:
        """Ray Train collects metrics from every worker; other backends only log."""
        if self.backend == "ray":
            import ray.train

            ray.train.report(metrics)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init_env(device: str = "auto", backend: str = "auto") -> Env:
    """The environment this process trains in; starts the torchrun process group when there is one."""
    if backend == "ray":
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        return Env(device=ray.train.torch.get_device(), rank=ctx.get_world_rank(),
                   world_size=ctx.get_world_size(), local_rank=ctx.get_local_rank(), backend="ray")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if backend in ("auto", "torchrun") and world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if use_cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        return Env(device=torch.device(f"cuda:{local}" if use_cuda else "cpu"), rank=dist.get_rank(),
                   world_size=world, local_rank=local, backend="torchrun")
    return Env(device=pick_device(device))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _ray_worker(config: dict) -> None:
    from train.config import config_from_checkpoint
    from train.loop import fit

    fit(config_from_checkpoint(config["cfg"]), config["kind"], backend="ray")


def _absolute(path: str | None) -> str | None:
    return path if not path or "://" in path or os.path.isabs(path) else os.path.abspath(path)


def fit_with_ray(cfg, kind: str, *, num_workers: int, use_gpu: bool = False, address: str | None = None):
    """Runs `fit` on `num_workers` Ray Train workers (a local Ray unless `address` names a cluster).

    Returns:
        Ray Train's `Result` (metrics of the last report; checkpoints are in cfg.run.out_dir).
    """
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, logging_level="WARNING")
    # Workers start in directories of their own: every local path must be absolute.
    cfg.data.dataset, cfg.data.latents = _absolute(cfg.data.dataset), _absolute(cfg.data.latents)
    cfg.vae.checkpoint, cfg.run.out_dir = _absolute(cfg.vae.checkpoint), _absolute(cfg.run.out_dir)
    if cfg.run.resume not in ("auto", "never"):
        cfg.run.resume = _absolute(cfg.run.resume)
    out = cfg.run.out_dir
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"cfg": cfg.to_dict(), "kind": kind},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(name=f"{kind}-{os.path.basename(out)}", storage_path=os.path.join(out, "ray")),
    )
    return trainer.fit()
