"""Text to video: Euler ODE sampling with classifier-free guidance, VAE decode, mp4 on disk.

    captions --text encoder--> (cond, "" as uncond) --DiT velocity, Euler steps from noise--> latents
             --VAE decode--> frames in [-1, 1] --> uint8 --> H.264 mp4 (PyAV; MPEG-4 where libx264 is missing)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from train import checkpoint
from train.config import config_from_checkpoint
from train.data import bucket_sizes
from train.distributed import pick_device
from train.dit import DiT, DiTConfig
from train.flow import euler_sample
from train.tasks import load_vae
from train.text import TextEncoder, load_text_encoder
from train.vae import VideoVAE


def write_mp4(frames: np.ndarray, target, fps: float = 8.0, codec: str = "libx264",
              metadata: dict[str, str] | None = None) -> None:
    """Writes (T, H, W, 3) uint8 frames (even H and W) as an mp4 to a path or a writable binary file, with
    container `metadata` (mp4 keys such as title and comment)."""
    import av

    with av.open(target, mode="w", format="mp4") as container:
        container.metadata.update(metadata or {})
        try:
            stream = container.add_stream(codec, rate=round(fps))
        except (ValueError, av.FFmpegError):  # a PyAV build without libx264
            stream = container.add_stream("mpeg4", rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


@dataclass
class Pipeline:
    """What sampling needs, loaded from a DiT checkpoint."""

    dit: DiT
    vae: VideoVAE
    text: TextEncoder
    cfg: object  # the TrainConfig the DiT was trained with
    step: int
    model_profile: str


def load_pipeline(path: str, device: str = "auto", *, ema: bool = True) -> Pipeline:
    """The DiT (EMA weights by default), its VAE and its text encoder, from a DiT checkpoint.

    Raises:
        FileNotFoundError: the checkpoint or the VAE checkpoint it names is missing. ValueError: not a DiT one.
        WeightsError: the text encoder's weights cannot be had.
    """
    dev = pick_device(device)
    state = checkpoint.load(path, dev)
    if state.get("kind") != "dit":
        raise ValueError(f"{path} is a {state.get('kind')!r} checkpoint; sampling needs a DiT checkpoint")
    cfg = config_from_checkpoint(state["config"])
    dit = DiT(DiTConfig(**state["model_config"]))
    dit.load_state_dict(checkpoint.model_weights(state, ema=ema))
    return Pipeline(dit=dit.to(dev).eval(), vae=load_vae(state["vae_checkpoint"], dev),
                    text=load_text_encoder(cfg.text, dev), cfg=cfg, step=state["step"],
                    model_profile=state.get("model_profile", cfg.text.profile))


@torch.no_grad()
def generate(pipe: Pipeline, prompts: list[str], *, num_frames: int, height: int, width: int, steps: int = 30,
             cfg_scale: float = 5.0, shift: float = 1.0, seed: int = 0) -> np.ndarray:
    """Videos for `prompts`: (B, T, H, W, 3) uint8.

    Raises:
        ValueError: the shape does not fit the VAE's compression or the DiT's patches.
    """
    device = next(pipe.dit.parameters()).device
    c, t, h, w = pipe.vae.cfg.latent_shape(num_frames, height, width)
    patch = pipe.dit.cfg.patch_size
    if t % patch[0] or h % patch[1] or w % patch[2]:
        raise ValueError(f"latent grid {t}x{h}x{w} is not divisible by the DiT patch {patch}")
    generator = torch.Generator(device=device).manual_seed(seed)
    noise = torch.randn((len(prompts), c, t, h, w), generator=generator, device=device)
    cond = pipe.text(prompts)
    both = tuple(torch.cat([a, b]) for a, b in zip(cond, pipe.text([""] * len(prompts))))

    def velocity(x: torch.Tensor, times: torch.Tensor, guided: bool) -> torch.Tensor:
        tokens, mask, pooled = both if guided else cond
        return pipe.dit(x, times, tokens, mask, pooled)

    latents = euler_sample(velocity, noise, steps=steps, cfg_scale=cfg_scale, shift=shift)
    video = pipe.vae.decode(pipe.vae.from_diffusion(latents)).clamp(-1, 1)
    return ((video + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "unconditional"


def sample_to_files(path: str, prompts: list[str], out_dir: str, *, device: str = "auto", ema: bool = True,
                    seed: int = 0, **overrides) -> list[Path]:
    """Loads the checkpoint, samples one clip per prompt and writes `out_dir/NN-<prompt>.mp4` (the prompt, the
    model profile, checkpoint and seed go into the mp4's title and comment).

    Args:
        overrides: num_frames, height, width, steps, cfg_scale, shift, fps; unset ones come from the
            checkpoint config's `sample` section (shape defaults: data.num_frames and the first bucket).
    Returns:
        The mp4 paths.
    """
    pipe = load_pipeline(path, device, ema=ema)
    s, data = pipe.cfg.sample, pipe.cfg.data
    opts = {k: v for k, v in overrides.items() if v is not None}
    bucket = bucket_sizes(data)[0]
    shape = dict(num_frames=opts.get("num_frames", s.num_frames or data.num_frames),
                 height=opts.get("height", s.height or bucket[0]), width=opts.get("width", s.width or bucket[1]))
    videos = generate(pipe, prompts, steps=opts.get("steps", s.steps), cfg_scale=opts.get("cfg_scale", s.cfg_scale),
                      shift=opts.get("shift", s.shift), seed=seed, **shape)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (prompt, video) in enumerate(zip(prompts, videos)):
        target = out / f"{i:02d}-{slug(prompt)}.mp4"
        write_mp4(video, target, fps=opts.get("fps", s.fps), metadata={
            "title": prompt, "comment": f"vidcurate train sample: model_profile={pipe.model_profile} "
                                        f"checkpoint={path} step={pipe.step} seed={seed}"})
        paths.append(target)
    return paths
