"""Pre-LayerNorm transformer with an explicit boolean attention mask (True = may attend)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedSelfAttention(nn.Module):
    def __init__(self, width: int, num_heads: int):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, W); mask (B, N, N) or (N, N) bool, True where query i may attend to key j."""
        b, n, w = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, w // self.num_heads).permute(2, 0, 3, 1, 4)
        if mask.dim() == 3:
            mask = mask[:, None]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, w))


class TransformerBlock(nn.Module):
    """LN -> attention -> residual; LN -> MLP (GELU, tanh approximation) -> residual."""

    def __init__(self, width: int, num_heads: int, mlp_dim: int, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = MaskedSelfAttention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_dim, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, depth: int, num_heads: int, mlp_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(width, num_heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)
