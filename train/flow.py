"""Rectified flow: the training objective and the Euler ODE sampler with classifier-free guidance.

A straight path from data to noise, x_t = (1 - t) x_0 + t * noise for t in [0, 1]; the model learns its
velocity v = noise - x_0. Training timesteps are logit-normal (SD3): t = sigmoid(n), n ~ N(mean, std), which
puts more weight on the middle of the path, where the velocity is hardest to predict. Sampling integrates
dx/dt = v from t = 1 (noise) to t = 0 with Euler steps.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def logit_normal_timesteps(n: int, *, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None,
                           device: torch.device | str = "cpu") -> torch.Tensor:
    """(n,) timesteps in (0, 1), sigmoid of a normal sample."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))


def flow_loss(velocity_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor, *,
              generator: torch.Generator | None = None, t_mean: float = 0.0, t_std: float = 1.0) -> torch.Tensor:
    """The rectified-flow MSE on a batch of clean latents.

    Args:
        velocity_fn: (x_t, t) -> predicted velocity (the model with its conditioning bound).
        x0: clean latents (B, ...).
        generator: the source of noise and timesteps (the training loop's, so resume is exact).
    Returns:
        The scalar loss (fp32).
    """
    t = logit_normal_timesteps(x0.shape[0], mean=t_mean, std=t_std, generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    t_b = t.view(-1, *[1] * (x0.dim() - 1)).to(x0.dtype)
    x_t = (1 - t_b) * x0 + t_b * noise
    return F.mse_loss(velocity_fn(x_t, t).float(), (noise - x0).float())


def shifted_schedule(steps: int, shift: float = 1.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """steps + 1 times from 1 to 0; shift > 1 spends more steps near the noise end (for larger latents, SD3)."""
    t = torch.linspace(1.0, 0.0, steps + 1, device=device)
    return shift * t / (1 + (shift - 1) * t)


@torch.no_grad()
def euler_sample(velocity_fn: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor], noise: torch.Tensor, *,
                 steps: int = 30, cfg_scale: float = 1.0, shift: float = 1.0) -> torch.Tensor:
    """Integrates from noise (t = 1) to data (t = 0).

    Args:
        velocity_fn: (x, t, guided) -> velocity. When `guided`, x holds the batch twice (conditional first,
            unconditional second) and the function must condition each half accordingly.
        noise: the starting latents (B, ...).
        steps: Euler steps.
        cfg_scale: classifier-free guidance; 1 means plain conditional sampling (one forward per step).
        shift: timestep shift (see `shifted_schedule`).
    Returns:
        Latents at t = 0.
    """
    x = noise
    times = shifted_schedule(steps, shift, noise.device)
    guided = cfg_scale != 1.0
    for t_now, t_next in zip(times[:-1], times[1:]):
        if guided:
            v_cond, v_uncond = velocity_fn(torch.cat([x, x]), t_now.expand(2 * x.shape[0]), True).chunk(2)
            v = v_uncond + cfg_scale * (v_cond - v_uncond)
        else:
            v = velocity_fn(x, t_now.expand(x.shape[0]), False)
        x = x + (t_next - t_now) * v
    return x
