"""Small embedding and MLP blocks."""

from __future__ import annotations

import math

import torch
from torch import nn


class LearnedFourierFeatures(nn.Module):
    """Time t (B, 1) -> [cos(2 pi W t), sin(2 pi W t)] (B, dim) with a learned W (Octo's head)."""

    def __init__(self, dim: int):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(dim // 2, 1) * 0.2)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * t @ self.kernel.T
        return torch.cat([torch.cos(f), torch.sin(f)], dim=-1)


class MLPResNetBlock(nn.Module):
    """x + Dense(swish(Dense(LN(x)))) with a 4x expansion (Octo's diffusion head block)."""

    def __init__(self, width: int, dropout: float = 0.0, eps: float = 1e-5, layer_norm: bool = True):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.LayerNorm(width, eps=eps) if layer_norm else nn.Identity(),
            nn.Linear(width, 4 * width),
            nn.SiLU(),
            nn.Linear(4 * width, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MLPResNet(nn.Module):
    """Dense -> MLPResNetBlocks -> swish -> Dense. eps: the blocks' LayerNorm epsilon (Flax's is 1e-6)."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        num_blocks: int,
        dropout: float = 0.0,
        eps: float = 1e-5,
        layer_norm: bool = True,
    ):
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.blocks = nn.Sequential(*(MLPResNetBlock(hidden, dropout, eps, layer_norm) for _ in range(num_blocks)))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x)))
