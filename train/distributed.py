"""The process the training loop runs in: one device, or a `torchrun` / Ray Train rank; the loop is the same.

- One process (the default): the configured device, no process group.
- `torchrun --nproc-per-node N -m train dit ...`: detected from WORLD_SIZE/RANK/LOCAL_RANK; NCCL on GPUs,
  gloo on CPUs; the model is wrapped in DistributedDataParallel.
- Ray Train workers (`train/ray_train.py`): Ray sets up the process group, `prepare_model` wraps the model.

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
