"""Flow matching (openpi convention), shared by flow-matching action heads.

Convention: t = 1 is noise, t = 0 is data; x_t = t * eps + (1 - t) * a and the model predicts the
velocity u = eps - a, so the clean sample predicted from x_t is x_t - t * v. Sampling integrates
dx/dt = v from t = 1 to t = 0 with explicit Euler steps. A velocity field is a callable
`velocity(x, t) -> v` with x, v (B, ...) and t a Python float.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vla_ros.backends.blocks import rtc

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


def sincos_time_embedding(t: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0) -> torch.Tensor:
    """Time t (B,) -> [sin, cos] features (B, dim), periods spaced geometrically from min to max period.

    Computed in float64, returned as float32 (π₀ uses periods 4e-3..4 for t in [0, 1]).
    """
    if dim % 2:
        raise ValueError(f"time embedding dim must be even, got {dim}")
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = t.to(torch.float64)[:, None] * (2 * math.pi / period)[None, :]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).float()


def euler_integrate(velocity: Velocity, noise: torch.Tensor, num_steps: int) -> torch.Tensor:
    """x at t = 0 from x = `noise` at t = 1: `num_steps` Euler steps of size dt = -1 / num_steps.

    Step k evaluates the field at t_k = 1 - k / num_steps (t = 1, 0.9, ..., 0.1 for 10 steps).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    x = noise
    dt = -1.0 / num_steps
    for k in range(num_steps):
        x = x + dt * velocity(x, 1.0 - k / num_steps)
    return x


def rtc_guidance_weight(t: float, max_guidance: float) -> float:
    """RTC's guidance weight min(beta, (1 - tau) / (tau r^2)) at flow time t (tau = 1 - t is RTC's time).

    r^2 = (1 - tau)^2 / (tau^2 + (1 - tau)^2); at tau = 0 (pure noise) the weight is `max_guidance`.
    """
    tau = 1.0 - t
    if tau <= 0.0:
        return max_guidance
    r_squared = (1.0 - tau) ** 2 / (tau**2 + (1.0 - tau) ** 2)
    # guidance_scale clips 1 / s; s = tau r^2 / (1 - tau) makes that (1 - tau) / (tau r^2)
    return rtc.guidance_scale(tau * r_squared / max(1.0 - tau, 1e-12), max_guidance)


def rtc_guided(velocity: Velocity, target: torch.Tensor, weights: torch.Tensor, max_guidance: float) -> Velocity:
    """`velocity` with Real-Time Chunking guidance (Black et al. 2025) towards `target`.

    target: (B, H, D) chunk to continue, in the model's action units; weights: (H,) per point
    (1 frozen, decaying over the overlap, 0 free). In RTC's time tau = 1 - t the guided velocity
    is v + w g with g = (W (target - clean))^T d clean / d x; the openpi velocity points the other
    way (v_openpi = -v_rtc), hence v - w g here. clean = x - t v(x).
    """

    def guided(x: torch.Tensor, t: float) -> torch.Tensor:
        evaluated = {}

        def predict_clean(x_: torch.Tensor) -> torch.Tensor:
            evaluated["v"] = velocity(x_, t)
            return x_ - t * evaluated["v"]

        _, gradient = rtc.guidance_gradient(x, predict_clean, target, weights)
        return evaluated["v"].detach() - rtc_guidance_weight(t, max_guidance) * gradient

    return guided
