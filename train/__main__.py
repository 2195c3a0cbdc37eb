"""`python -m train`: the trainer's command line (see `python -m train --help`).

    python -m train vae           -c configs/train_tiny.yaml --dataset demo/dataset --tag run-... --out runs/vae
    python -m train cache-latents -c configs/train_tiny.yaml --vae runs/vae/checkpoints/last.pt
    python -m train dit           -c configs/train_tiny.yaml --vae runs/vae/checkpoints/last.pt --out runs/dit
    python -m train sample        runs/dit/checkpoints/last.pt --prompt "a red square" --out samples/
"""

from __future__ import annotations

import functools
import json
import sys

import click

from train.config import ConfigError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _errors(fn):
    """Turns the errors a user can fix into one line and exit status 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ConfigError, ValueError, FileNotFoundError) as e:  # WeightsError is a FileNotFoundError
            _fail(str(e))
    return wrapper


def selection_options(fn):
    """The options every command that reads clips shares: config, dataset, version or tag, filter, --set."""
    options = [
        click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="YAML file over the defaults (see configs/train_*.yaml, `python -m train config`)."),
        click.option("--dataset", default=None, help="Curated dataset URI (the directory holding clips.lance)."),
        click.option("--version", "version", default=None, help="clips.lance version number or tag to read."),
        click.option("--tag", default=None, help="Tag to read (same as --version TAG)."),
        click.option("--filter", "filter_", default=None, help="Lance filter over clips columns ('aesthetic >= 5')."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override any config field, value as YAML (e.g. --set dit.size=B). Repeatable."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def training_options(fn):
    options = [
        click.option("--out", "out_dir", default=None, help="Run directory: checkpoints/ and log.jsonl."),
        click.option("--steps", type=int, default=None, help="Total optimizer steps."),
        click.option("--resume", default=None, help="auto (the run directory's last.pt), never, or a checkpoint."),
        click.option("--ray-workers", type=int, default=0, help="Train on N Ray Train workers (TorchTrainer)."),
        click.option("--gpu", is_flag=True, help="With --ray-workers: one GPU per worker."),
        click.option("--address", default=None, help="With --ray-workers: an existing Ray cluster's address."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _config(config_path, dataset, version, tag, filter_, sets, **fields):
    from train.config import load_config

    if version is not None and tag is not None and version != tag:
        raise ConfigError("give --version or --tag, not both")
    ref = tag if tag is not None else version
    overrides = {"data.dataset": dataset, "data.version": int(ref) if ref and ref.isdigit() else ref,
                 "data.filter": filter_, **fields}
    return load_config(config_path, {k: v for k, v in overrides.items() if v is not None}, list(sets))


def _train(kind: str, cfg, ray_workers: int, gpu: bool, address: str | None) -> None:
    if ray_workers:
        from train.ray_train import fit_with_ray

        result = fit_with_ray(cfg, kind, num_workers=ray_workers, use_gpu=gpu, address=address)
        if result.error is not None:
            raise RuntimeError(f"ray train failed: {result.error}")
        click.echo(f"ray train finished: {json.dumps(result.metrics or {}, default=str)}; log and checkpoints in "
                   f"{cfg.run.out_dir}")
        return
    from train.loop import fit

    fit(cfg, kind)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train the bundled video VAE and text-to-video DiT on curated Lance datasets, and sample from them."""


@main.command()
@selection_options
@training_options
@_errors
def vae(config_path, dataset, version, tag, filter_, sets, out_dir, steps, resume, ray_workers, gpu, address):
    """Train the causal video VAE (reconstruction + KL) on the selected clips."""
    cfg = _config(config_path, dataset, version, tag, filter_, sets,
                  **{"run.out_dir": out_dir, "run.steps": steps, "run.resume": resume})
    _train("vae", cfg, ray_workers, gpu, address)


@main.command(name="dit")
@selection_options
@training_options
@click.option("--vae", "vae_ckpt", default=None, help="The trained VAE's checkpoint (vae.checkpoint).")
@click.option("--latents", default=None, help="A latents table from cache-latents, instead of decoding clips.")
@_errors
def dit(config_path, dataset, version, tag, filter_, sets, out_dir, steps, resume, ray_workers, gpu, address,
        vae_ckpt, latents):
    """Train the text-to-video DiT (rectified flow on VAE latents). Alias: fit."""
    cfg = _config(config_path, dataset, version, tag, filter_, sets,
                  **{"run.out_dir": out_dir, "run.steps": steps, "run.resume": resume, "vae.checkpoint": vae_ckpt,
                     "data.latents": latents})
    _train("dit", cfg, ray_workers, gpu, address)


main.add_command(dit, name="fit")


@main.command(name="cache-latents")
@selection_options
@click.option("--vae", "vae_ckpt", default=None, help="The trained VAE's checkpoint (vae.checkpoint).")
@click.option("--table", default=None, help="Output table URI (default: <dataset>/latents.lance).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@_errors
def cache_latents_cmd(config_path, dataset, version, tag, filter_, sets, vae_ckpt, table, batch_size, device):
    """Encode the selected clips with the VAE into a Lance latents table for DiT training."""
    from train.latents import cache_latents

    cfg = _config(config_path, dataset, version, tag, filter_, sets, **{"vae.checkpoint": vae_ckpt})
    info = cache_latents(cfg, table_uri=table, batch_size=batch_size, device=device)
    click.echo(f"wrote {info['rows']} latents to {info['table']} (version {info['version']}, from clips.lance "
               f"v{info['clips_version']}) in {info['seconds']:.1f} s; train with --latents {info['table']}")


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT")
@click.option("--prompt", "prompts", multiple=True, required=True, help="Caption to sample (repeatable).")
@click.option("--out", "out_dir", default="samples", show_default=True, help="Directory for the mp4 files.")
@click.option("--frames", "num_frames", type=int, default=None, help="Frames (1 + k * VAE temporal compression).")
@click.option("--height", type=int, default=None, help="Pixels (a multiple of VAE compression x DiT patch).")
@click.option("--width", type=int, default=None, help="Pixels; both default to the first bucket's size.")
@click.option("--steps", type=int, default=None, help="Euler steps.")
@click.option("--cfg-scale", type=float, default=None, help="Classifier-free guidance scale (1 = off).")
@click.option("--shift", type=float, default=None, help="Timestep shift (>1: more steps near noise).")
@click.option("--fps", type=float, default=None, help="Frame rate written into the mp4.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--no-ema", is_flag=True, help="Use the raw weights instead of the EMA.")
@_errors
def sample(checkpoint_path, prompts, out_dir, num_frames, height, width, steps, cfg_scale, shift, fps, seed, device,
           no_ema):
    """Sample clips from a DiT CHECKPOINT and write them as mp4 files."""
    from train.sample import sample_to_files

    paths = sample_to_files(checkpoint_path, list(prompts), out_dir, device=device, ema=not no_ema, seed=seed,
                            num_frames=num_frames, height=height, width=width, steps=steps, cfg_scale=cfg_scale,
                            shift=shift, fps=fps)
    for p in paths:
        click.echo(str(p))


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML file over the defaults.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field (repeatable).")
@_errors
def config(config_path, sets):
    """Print the defaults (or FILE and --set merged over them, checked) as YAML."""
    from train.config import load_config

    click.echo(load_config(config_path, sets=list(sets)).to_yaml(), nl=False)


if __name__ == "__main__":
    main()
