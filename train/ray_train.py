"""`python -m train dit --ray-workers N [--gpu] [--address ...]`: `ray.train.torch.TorchTrainer` runs the same
`fit` (train/loop.py) on N workers; Ray sets up the process group (train/distributed.py reads it).

Rank 0 alone logs and writes checkpoints, so `run.out_dir` must be storage every node can reach when workers span
nodes.
"""

from __future__ import annotations

import os

from train.config import config_from_checkpoint
from train.loop import fit


def _ray_worker(config: dict) -> None:
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
