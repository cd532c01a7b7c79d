"""DDPM noise schedule and samplers (noise-prediction parameterisation), shared by diffusion heads.

Conventions: k = 0 is clean data, k = K - 1 the noisiest step; `alpha_bar[k]` is the signal
fraction. `denoise(x_k, k) -> predicted noise` is the model.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from vla_ros.backends.blocks import rtc


def cosine_beta_schedule(
    num_steps: int, s: float = 0.008, max_beta: float = 0.999, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Betas (K,) float32 of the cosine schedule (Nichol & Dhariwal 2021), clipped at `max_beta`.

    dtype: the precision it is computed in (float32 reproduces JAX's default-precision schedule)."""
    t = torch.linspace(0, num_steps, num_steps + 1, dtype=dtype) / num_steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    return betas.clamp(0, max_beta).float()


class DDPMSchedule:
    def __init__(self, num_steps: int = 20):
        self.num_steps = num_steps
        self.betas = cosine_beta_schedule(num_steps)
        self.alphas = 1 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, 0)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """x_k = sqrt(alpha_bar_k) x0 + sqrt(1 - alpha_bar_k) noise; k (B,) long, x0 (B, ...)."""
        ab = self.alpha_bar.to(x0.device)[k].view(-1, *([1] * (x0.dim() - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    @torch.no_grad()
    def sample(
        self,
        denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x_init: torch.Tensor,
        generator: torch.Generator | None = None,
        clip: float = 5.0,
        temperature: float = 1.0,
        draws: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """DDPM ancestral sampling from `x_init` (pure noise, B x ...).

        `temperature` scales the noise added at each step (1: the DDPM posterior; 0: deterministic).
        draws (K + 1, *x_init.shape): the noise of each step, [i] for k = K - i (as `sample_clipping_x`'s
        sequence; [0] and [K] unused) instead of drawing from `generator`.

        Each step predicts x0 from the noise estimate, clips it to +/-clip and samples the
        posterior q(x_{k-1} | x_k, x0). Clipping x0 (not x_k, as Octo's JAX code does) keeps the
        first step well-conditioned: with beta near 1 there, a small noise-estimate error
        would otherwise be amplified ~30x.
        """
        x = x_init
        for i, k in enumerate(reversed(range(self.num_steps)), start=1):
            kk = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
            eps = denoise(x, kk)
            ab = self.alpha_bar[k].item()
            x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-clip, clip)
            if k == 0:
                return x0
            ab_prev, beta, alpha = self.alpha_bar[k - 1].item(), self.betas[k].item(), self.alphas[k].item()
            mean = (math.sqrt(ab_prev) * beta / (1 - ab)) * x0 + (math.sqrt(alpha) * (1 - ab_prev) / (1 - ab)) * x
            var = beta * (1 - ab_prev) / (1 - ab)
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if draws is None else draws[i]
            x = mean + temperature * math.sqrt(var) * z
        return x


def sample_clipping_x(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noises: torch.Tensor,
    betas: torch.Tensor,
    clip: float,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDPM ancestral sampling as Octo's JAX diffusion head: the sample x_k (not x0) is clipped to
    +/-clip after every step.

    noises (K + 1, *shape): [0] the initial sample, [i] the draw of the i-th step (k = K - i); a draw
    is taken at k = 0 too (used only where `valid` is False). betas (K,) float32.
    valid: bool, broadcastable to shape; False entries (action dims the embodiment lacks) are set
    to the noise level of their step, as in training. denoise(x, k) -> noise estimate, k (*shape[:-1], 1).
    Returns x_0 (*shape).
    """
    alphas = 1 - betas
    alpha_bar = torch.cumprod(alphas, 0)
    x = noises[0]
    for i, k in enumerate(range(len(betas) - 1, -1, -1), start=1):
        eps = denoise(x, torch.full((*x.shape[:-1], 1), k, dtype=torch.long, device=x.device))
        x = (1 / torch.sqrt(alphas[k])) * (x - (1 - alphas[k]) / torch.sqrt(1 - alpha_bar[k]) * eps)
        if k > 0:
            x = x + torch.sqrt(betas[k]) * noises[i]
        x = x.clamp(-clip, clip)
        if valid is not None:
            x = torch.where(valid, x, torch.sqrt(1 - alpha_bar[k]) * noises[i])
    return x


def rtc_guided_denoiser(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: DDPMSchedule,
    target: torch.Tensor,
    weights: torch.Tensor,
    max_guidance: float,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`denoise` steered to continue `target` (B, H, D) with the RTC soft mask `weights` (H,).

    The sampler's x may be flat (B, H*D). Each step (1) adds the PiGDM guidance term of Real-Time
    Chunking to the clean estimate x0(x_k): min(beta, 1 / r^2) * vjp of its weighted error, with
    r^2 = 1 - a_k for a variance-preserving diffusion; (2) inpaints it with the soft mask,
    x0 <- W target + (1 - W) x0, so the frozen points end exactly on the running plan. (2) is
    needed for trained DDPM heads: at high noise their clean estimate hardly depends on x_k, so
    the guidance gradient alone barely moves the chunk. With `max_guidance` 0 the step is (2) alone,
    without the vector-Jacobian product (a backward pass through the model per step). Returns the
    noise matching the new x0.
    """
    mask = weights.view(1, -1, 1)

    def guided(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        ab = schedule.alpha_bar[int(k[0])].item()

        def predict_clean(x3: torch.Tensor) -> torch.Tensor:
            flat = x3.reshape(x.shape)
            return ((flat - math.sqrt(1 - ab) * denoise(flat, k)) / math.sqrt(ab)).reshape(x3.shape)

        if max_guidance > 0:
            clean, gradient = rtc.guidance_gradient(x.reshape(target.shape), predict_clean, target, weights)
            clean = (
                clean + (1 - ab) / math.sqrt(ab) * rtc.guidance_scale(1 - ab, max_guidance) * gradient
            )  # eps - sqrt(1 - a) s g, as x0
        else:
            clean = predict_clean(x.reshape(target.shape))
        clean = mask * target + (1 - mask) * clean
        return (x - math.sqrt(ab) * clean.reshape(x.shape)) / math.sqrt(1 - ab)

    return guided
