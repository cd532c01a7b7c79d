"""π₀ model (openpi `pi0.py` / `pi0_pytorch.py`): prefix and suffix embeddings, attention mask, velocity.

Tokens, in order: prefix = per camera slot the SigLIP patch tokens, then the prompt tokens
(bidirectional among themselves); suffix = one state token, then `action_horizon` action tokens.
Attention (`block_attention_mask`): a token sees valid tokens of its own block and of earlier
blocks; blocks are prefix | state | actions. RoPE positions are cumsum(valid) - 1, so padding and
masked cameras take no position. The prefix runs once into a KV cache (`prefill`); every
denoising step runs the suffix through the action expert only (`velocity`).

Dtypes: the transformer stacks run in the model's dtype (float32 or bfloat16); the state/action
projections, the time embedding and the sampler stay float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.backends.blocks.flow import sincos_time_embedding
from vla_ros.backends.pi0.configuration import Pi0Config
from vla_ros.backends.pi0.paligemma import KVCache, PaliGemmaWithExpert

TIME_MIN_PERIOD, TIME_MAX_PERIOD = 4e-3, 4.0


def block_attention_mask(valid: torch.Tensor, block_starts: torch.Tensor) -> torch.Tensor:
    """big_vision / openpi attention rule.

    valid: (B, N) bool, False for padding. block_starts: (N,) bool, True where a token opens a new
    block that earlier tokens may not see. Returns (B, N, N) bool: query i may attend key j iff
    both are valid and block(j) <= block(i).
    """
    block = torch.cumsum(block_starts.long(), dim=0)
    allowed = block[None, :] <= block[:, None]
    return allowed[None] & valid[:, None, :] & valid[:, :, None]


def positions_from_valid(valid: torch.Tensor) -> torch.Tensor:
    """RoPE positions (B, N) = cumsum(valid) - 1: invalid tokens repeat their predecessor's position."""
    return torch.cumsum(valid.long(), dim=1) - 1


class Pi0Model(nn.Module):
    def __init__(self, cfg: Pi0Config):
        super().__init__()
        self.cfg = cfg
        width = cfg.action_expert.width
        self.paligemma_with_expert = PaliGemmaWithExpert(cfg)
        self.state_proj = nn.Linear(cfg.state_dim, width)
        self.action_in_proj = nn.Linear(cfg.action_dim, width)
        self.action_out_proj = nn.Linear(width, cfg.action_dim)
        self.action_time_mlp_in = nn.Linear(2 * width, width)
        self.action_time_mlp_out = nn.Linear(width, width)
        # suffix blocks: state | actions
        starts = torch.zeros(1 + cfg.action_horizon, dtype=torch.bool)
        starts[:2] = True
        self.register_buffer("suffix_starts", starts, persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the transformer stacks."""
        return self.paligemma_with_expert.stacks[1].norm.weight.dtype

    def set_dtype(self, dtype: torch.dtype) -> Pi0Model:
        """Transformer stacks (vision tower included) in `dtype`; projections and RoPE frequencies stay float32."""
        self.float()
        for name, child in self.paligemma_with_expert.named_children():
            if name != "rotary":  # a bfloat16 inv_freq would shift angles by radians at position ~800
                child.to(dtype)
        return self

    # --- embeddings -------------------------------------------------------------------------

    def embed_prefix(
        self, images: torch.Tensor, image_valid: torch.Tensor, tokens: torch.Tensor, token_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix tokens (B, P, W) in the model dtype and their valid mask (B, P).

        images: (B, C, 3, S, S) in [-1, 1], one per camera slot; image_valid: (B, C) bool;
        tokens: (B, L) ids; token_valid: (B, L) bool. All C images go through SigLIP in one batch.
        """
        b, c = images.shape[:2]
        pw = self.paligemma_with_expert
        image_tokens = pw.embed_images(images.flatten(0, 1))  # (B*C, T, W)
        t = image_tokens.shape[1]
        lang = pw.embed_language(tokens)
        embs = torch.cat([image_tokens.reshape(b, c * t, -1).to(lang.dtype), lang], dim=1)
        valid = torch.cat([image_valid.repeat_interleave(t, dim=1), token_valid], dim=1)
        return embs, valid

    def embed_suffix(self, state: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Suffix tokens (B, 1 + H, expert width), float32.

        state: (B, state_dim); x: noisy actions (B, H, action_dim); t: flow time (B,).
        Action token = MLP([action_in_proj(x), sincos(t)]) with swish (openpi's π₀, not π₀.5).
        """
        state_token = self.state_proj(state.float())[:, None]
        actions = self.action_in_proj(x.float())
        time = sincos_time_embedding(t, actions.shape[-1], TIME_MIN_PERIOD, TIME_MAX_PERIOD)
        mixed = torch.cat([actions, time[:, None].expand_as(actions)], dim=-1)
        actions = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(mixed)))
        return torch.cat([state_token, actions], dim=1)

    # --- transformer passes -----------------------------------------------------------------

    def layout(self, prefix_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention mask (B, N, N) and RoPE positions (B, N) of prefix + suffix, N = P + 1 + H."""
        b, p = prefix_valid.shape
        suffix_valid = torch.ones(b, self.suffix_starts.shape[0], dtype=torch.bool, device=prefix_valid.device)
        valid = torch.cat([prefix_valid, suffix_valid], dim=1)
        starts = torch.cat([torch.zeros(p, dtype=torch.bool, device=valid.device), self.suffix_starts])
        return block_attention_mask(valid, starts), positions_from_valid(valid)

    def prefill(self, prefix: torch.Tensor, prefix_valid: torch.Tensor) -> KVCache:
        """Run the prefix (B, P, W) once: per-layer keys/values plus the suffix rows of mask and positions."""
        p = prefix.shape[1]
        mask, positions = self.layout(prefix_valid)
        _, (keys, values) = self.paligemma_with_expert((prefix, None), positions[:, :p], mask[:, :p, :p], fill_cache=True)
        return KVCache(keys, values, mask[:, p:], positions[:, p:])

    def velocity(self, cache: KVCache, state: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Flow velocity (B, H, action_dim), float32, of noisy actions x at time t, reading the prefix cache."""
        suffix = self.embed_suffix(state, x, t).to(self.dtype)
        (_, out), _ = self.paligemma_with_expert((None, suffix), cache.suffix_positions, cache.suffix_mask, cache=cache)
        return self.action_out_proj(out[:, -self.cfg.action_horizon :].float())

    def velocity_uncached(
        self, prefix: torch.Tensor, prefix_valid: torch.Tensor, state: torch.Tensor, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Same as `velocity`, from one forward pass over the full prefix + suffix sequence (training path)."""
        suffix = self.embed_suffix(state, x, t).to(self.dtype)
        mask, positions = self.layout(prefix_valid)
        (_, out), _ = self.paligemma_with_expert((prefix, suffix), positions, mask)
        return self.action_out_proj(out[:, -self.cfg.action_horizon :].float())

    def denoiser(self, cache: KVCache, state: torch.Tensor) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The velocity field `(x, t) -> v` of one observation, for `blocks.flow` samplers."""

        def field(x: torch.Tensor, t: float) -> torch.Tensor:
            return self.velocity(cache, state, x, torch.full((x.shape[0],), t, device=x.device))

        return field
