"""A Vision Transformer in timm's `VisionTransformer` parameter layout, for loading timm-trained towers.

Parameter names follow timm (`patch_embed.proj`, `cls_token`, `reg_token`, `pos_embed`,
`blocks.{i}.{norm1,attn.qkv,attn.proj,ls1,norm2,mlp.fc1,mlp.fc2,ls2}`, `norm`, `attn_pool.*`),
with LayerScale's `gamma` named `scale_factor` as Prismatic / OpenVLA checkpoints store it.
`features` returns the patch tokens after a chosen block (no final norm, prefix tokens dropped),
which is what timm's `get_intermediate_layers(n={i})` returns.

timm itself is not a dependency: its modules import torchvision at load time, which has no CPU
wheel for this project's torch. `VitSpec` records the timm flags that change the parameters or
the features; the parity fixture checks this module against timm's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

POOLS = ("token", "map", "avg", "")
# the flags of the two tower kinds OpenVLA fuses, whatever their sizes (timm's model definitions)
DINOV2_REG4 = dict(class_token=True, reg_tokens=4, no_embed_class=True, layer_scale=True, global_pool="token")
SIGLIP = dict(class_token=False, global_pool="map")


@dataclass(frozen=True)
class VitSpec:
    """The timm flags of one tower (square images)."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int  # timm: int(embed_dim * mlp_ratio)
    patch_size: int = 14
    img_size: int = 224  # pixels
    class_token: bool = True
    reg_tokens: int = 0  # register tokens (DINOv2 "reg4": 4)
    no_embed_class: bool = False  # position embedding on patches only, prefix tokens added after
    layer_scale: bool = False  # timm `init_values` set: each residual branch scaled per channel
    global_pool: str = "token"  # "map" carries an attention-pool head (loaded, unused by `features`)
    norm_eps: float = 1e-6

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.global_pool not in POOLS:
            raise ValueError(f"global_pool {self.global_pool!r} is not one of {list(POOLS)}")
        for name in ("embed_dim", "depth", "num_heads", "mlp_dim", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def num_prefix_tokens(self) -> int:
        return int(self.class_token) + self.reg_tokens


class PatchEmbed(nn.Module):
    def __init__(self, spec: VitSpec):
        super().__init__()
        self.proj = nn.Conv2d(3, spec.embed_dim, spec.patch_size, stride=spec.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, N, D), patches in row-major order."""
        return self.proj(x).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale_factor = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block, optional LayerScale on both branches."""

    def __init__(self, spec: VitSpec):
        super().__init__()
        d = spec.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=spec.norm_eps)
        self.attn = Attention(d, spec.num_heads)
        self.ls1 = LayerScale(d) if spec.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=spec.norm_eps)
        self.mlp = Mlp(d, spec.mlp_dim)
        self.ls2 = LayerScale(d) if spec.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AttentionPoolLatent(nn.Module):
    """timm's multi-head attention pooling head (SigLIP's "map" pool): parameters only.

    Prismatic reads patch features before any pooling, so checkpoints carry these weights but
    inference never runs them; they exist so the checkpoint's keys load one-to-one.
    """

    def __init__(self, spec: VitSpec):
        super().__init__()
        d = spec.embed_dim
        self.latent = nn.Parameter(torch.zeros(1, 1, d))
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=spec.norm_eps)
        self.mlp = Mlp(d, spec.mlp_dim)


class VisionTransformer(nn.Module):
    def __init__(self, spec: VitSpec):
        super().__init__()
        self.spec = spec
        d = spec.embed_dim
        self.patch_embed = PatchEmbed(spec)
        if spec.class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        if spec.reg_tokens:
            self.reg_token = nn.Parameter(torch.zeros(1, spec.reg_tokens, d))
        embed_len = spec.num_patches + (0 if spec.no_embed_class else spec.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, d) * 0.02)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(d, eps=spec.norm_eps)
        if spec.global_pool == "map":
            self.attn_pool = AttentionPoolLatent(spec)

    def _prefix(self, batch: int) -> list[torch.Tensor]:
        tokens = [getattr(self, name) for name in ("cls_token", "reg_token") if hasattr(self, name)]
        return [t.expand(batch, -1, -1) for t in tokens]

    def features(self, pixels: torch.Tensor, block_index: int) -> torch.Tensor:
        """(B, 3, S, S) -> patch tokens (B, N, D) at the output of `blocks[block_index]`."""
        x = self.patch_embed(pixels)
        prefix = self._prefix(x.shape[0])
        if self.spec.no_embed_class:
            x = torch.cat([*prefix, x + self.pos_embed], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + self.pos_embed
        for block in self.blocks[: block_index + 1]:
            x = block(x)
        return x[:, self.spec.num_prefix_tokens :]
