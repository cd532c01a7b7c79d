"""Real-Time Chunking guidance (Black et al. 2025), shared by the diffusion and flow samplers.

The next chunk is inferred while the executor keeps running the current plan. The points of the
new chunk that will already have run (the inference delay) are frozen to the old plan, the
following overlap is pulled towards it with exponentially decaying weights, the rest is free.
Each denoising step adds a pseudo-inverse (PiGDM) guidance term: the vector-Jacobian product of
the weighted error of the predicted clean chunk, scaled by min(max_guidance, 1 / r^2).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from vla_ros.backends.settings import OVERLAP_ENDS
from vla_ros.core.types import PlanPrefix


def soft_mask(horizon: int, frozen: int, overlap: int) -> np.ndarray:
    """(horizon,) RTC weights: 1 for i < frozen, exponential decay for frozen <= i < overlap, 0 after."""
    frozen = int(np.clip(frozen, 0, horizon))
    overlap = int(np.clip(overlap, frozen, horizon))
    i = np.arange(horizon, dtype=np.float64)
    c = (overlap - i) / (overlap - frozen + 1)
    weights = c * np.expm1(c) / math.expm1(1.0)
    weights[:frozen] = 1.0
    weights[overlap:] = 0.0
    return weights


def prefix_on_grid(
    prefix: PlanPrefix, grid_times_s: np.ndarray, overlap_end: str = "plan"
) -> tuple[np.ndarray, np.ndarray]:
    """The plan `prefix` sampled at a chunk's point times (H,) -> targets (H, D) and weights (H,).

    Points due before `prefix.committed_until_s` are frozen (weight 1); later points take the prefix's
    last value (where the executor holds) after its end. overlap_end: where the decaying weights reach 0:
    "plan" (RTC): at the end of the prefix, later points are free; "chunk": at the end of the chunk, so
    the points after the plan's end are pulled, ever less, towards its last point (smoother chunk
    switches, less freedom early in the new part of the chunk).
    """
    if overlap_end not in OVERLAP_ENDS:
        raise ValueError(f"overlap_end must be one of {list(OVERLAP_ENDS)}, got {overlap_end!r}")
    grid = np.asarray(grid_times_s, dtype=np.float64)
    targets = np.stack(
        [np.interp(grid, prefix.times_s, prefix.positions[:, j]) for j in range(prefix.positions.shape[1])], axis=1
    )
    frozen = int(np.sum(grid <= prefix.committed_until_s))
    overlap = len(grid) if overlap_end == "chunk" else int(np.sum(grid <= prefix.times_s[-1]))
    return targets, soft_mask(len(grid), frozen, overlap)


def guidance_scale(r_squared: float, max_guidance: float) -> float:
    """PiGDM guidance weight 1 / r^2, clipped at `max_guidance` (RTC's beta)."""
    return min(max_guidance, 1.0 / max(r_squared, 1e-12))


def guidance_gradient(
    x: torch.Tensor,
    predict_clean: Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted clean chunk and the guidance direction (W (target - clean))^T d clean / d x.

    x, target: (B, H, D) in model units; weights: (H,). Returns (clean, gradient), both detached.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        clean = predict_clean(x)
        error = (target - clean) * weights.view(1, -1, 1)
        (gradient,) = torch.autograd.grad(clean, x, grad_outputs=error)
    return clean.detach(), gradient.detach()
