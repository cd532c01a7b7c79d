"""π₀ and π₀.5 (openpi `pi0.py` / `pi0_pytorch.py`): prefix and suffix embeddings, attention mask, velocity.

Tokens, in order: prefix = per camera slot the SigLIP patch tokens, then the prompt tokens
(bidirectional among themselves); suffix = π₀: one state token, then `action_horizon` action
tokens; π₀.5: the action tokens only (the state is text in the prompt).
Attention (`block_attention_mask`): a token sees valid tokens of its own block and of earlier
blocks; blocks are prefix | state | actions (π₀.5: prefix | actions). RoPE positions are
cumsum(valid) - 1, so padding and masked cameras take no position. The prefix runs once into a
KV cache (`prefill`); every denoising step runs the suffix through the action expert only (`velocity`).

Flow time t enters π₀ through the action tokens (MLP of [action, sincos(t)]) and π₀.5 through
the expert's adaptive RMSNorms (condition = MLP(sincos(t)), action tokens = action_in_proj(x)).

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
        self.action_in_proj = nn.Linear(cfg.action_dim, width)
        self.action_out_proj = nn.Linear(width, cfg.action_dim)
        if cfg.pi05:
            self.time_mlp_in = nn.Linear(width, width)
            self.time_mlp_out = nn.Linear(width, width)
        else:
            self.state_proj = nn.Linear(cfg.state_dim, width)
            self.action_time_mlp_in = nn.Linear(2 * width, width)
            self.action_time_mlp_out = nn.Linear(width, width)
        # suffix blocks: [state |] actions
        starts = torch.zeros(cfg.suffix_len, dtype=torch.bool)
        starts[: cfg.suffix_len - cfg.action_horizon + 1] = True
        self.register_buffer("suffix_starts", starts, persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the transformer stacks."""
        return self.paligemma_with_expert.stacks[1].layers[0].self_attn.q_proj.weight.dtype

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

    def embed_suffix(
        self, state: torch.Tensor | None, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Suffix tokens (B, suffix_len, expert width) and the expert's norm condition (B, width) or None, float32.

        state: (B, state_dim) (π₀; unused by π₀.5); x: noisy actions (B, H, action_dim); t: flow time (B,).
        π₀: action token = MLP([action_in_proj(x), sincos(t)]) with swish, after a state token.
        π₀.5: action token = action_in_proj(x); condition = swish(MLP(sincos(t))) with swish inside.
        """
        cfg = self.cfg
        actions = self.action_in_proj(x.float())
        time = sincos_time_embedding(t, actions.shape[-1], cfg.time_min_period, cfg.time_max_period)
        if cfg.pi05:
            return actions, F.silu(self.time_mlp_out(F.silu(self.time_mlp_in(time))))
        mixed = torch.cat([actions, time[:, None].expand_as(actions)], dim=-1)
        actions = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(mixed)))
        return torch.cat([self.state_proj(state.float())[:, None], actions], dim=1), None

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
        _, (keys, values) = self.paligemma_with_expert(
            (prefix, None), positions[:, :p], mask[:, :p, :p], fill_cache=True
        )
        return KVCache(keys, values, mask[:, p:], positions[:, p:])

    def velocity(self, cache: KVCache, state: torch.Tensor | None, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Flow velocity (B, H, action_dim), float32, of noisy actions x at time t, reading the prefix cache."""
        suffix, cond = self.embed_suffix(state, x, t)
        (_, out), _ = self.paligemma_with_expert(
            (None, suffix.to(self.dtype)), cache.suffix_positions, cache.suffix_mask, cache=cache, expert_cond=cond
        )
        return self.action_out_proj(out[:, -self.cfg.action_horizon :].float())

    def velocity_uncached(
        self,
        prefix: torch.Tensor,
        prefix_valid: torch.Tensor,
        state: torch.Tensor | None,
        x: torch.Tensor,
        t: torch.Tensor,
    ) -> torch.Tensor:
        """Same as `velocity`, from one forward pass over the full prefix + suffix sequence (training path)."""
        suffix, cond = self.embed_suffix(state, x, t)
        mask, positions = self.layout(prefix_valid)
        (_, out), _ = self.paligemma_with_expert((prefix, suffix.to(self.dtype)), positions, mask, expert_cond=cond)
        return self.action_out_proj(out[:, -self.cfg.action_horizon :].float())

    def denoiser(self, cache: KVCache, state: torch.Tensor | None) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The velocity field `(x, t) -> v` of one observation, for `blocks.flow` samplers."""

        def field(x: torch.Tensor, t: float) -> torch.Tensor:
            return self.velocity(cache, state, x, torch.full((x.shape[0],), t, device=x.device))

        return field
