"""SmolVLA (LeRobot 0.6.1 `modeling_smolvla.VLAFlowMatching` + `smolvlm_with_expert`): prefix, expert, velocity.

Built from transformers' own classes: SmolVLM2's `SmolVLMVisionTransformer` and `SmolVLMConnector`, and
Llama decoder layers for the language model (its first `num_vlm_layers` layers) and the action expert.
The attention between the two stacks is LeRobot's, written out here:

- prefix = per camera the image tokens (vision transformer -> connector's pixel shuffle + projection,
  times sqrt(width)), the prompt tokens (embedding times sqrt(width)), one state token (`state_proj`
  of the padded, normalised state). Images and prompt attend each other; the state token opens a new
  block (it sees the prefix, the prefix does not see it). The prefix runs once through the VLM
  layers into a cache of each layer's keys and values (RoPE applied).
- suffix = `chunk_size` action tokens, MLP([action_in_proj(x), sincos(t)]) with swish; each action
  token opens a block of its own, so the actions attend causally. They run through the expert only:
  a self-attention layer (`SmolVLAConfig.self_attention_layer`) attends over the cached prefix keys
  and values plus its own (RoPE positions after the prefix's valid tokens); a cross-attention layer
  attends to the prefix only, through the expert's k/v projections of the cached VLM keys/values
  (no RoPE on those) with its queries at RoPE positions 0..H-1.
- RoPE is LeRobot's `apply_rope` (wavelength 10,000, float32, halves rotated), not the VLM config's
  rope_theta; attention is softmax(q k^T / sqrt(head_dim)) with the VLM's head counts for both stacks.

The cross-attention keys/values depend on the observation only, so they are projected once per
observation (LeRobot projects them again at every denoising step: same values). The last VLM layer's
attention output and MLP feed nothing at inference and are skipped. Dtypes: the VLM and expert run in
the model's dtype; projections, RoPE, the time embedding and the sampler stay float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm
from transformers.models.smolvlm.modeling_smolvlm import SmolVLMConnector, SmolVLMVisionTransformer

from vla_ros.backends.blocks.flow import sincos_time_embedding
from vla_ros.backends.pi0.modeling import block_attention_mask, positions_from_valid
from vla_ros.backends.smolvla.configuration import SmolVLAConfig

ROPE_WAVELENGTH = 10_000.0  # LeRobot's apply_rope default (the VLM config's rope_theta is not used)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, max_wavelength: float = ROPE_WAVELENGTH) -> torch.Tensor:
    """Rotary embedding of x (B, L, H, D) at positions (B, L), computed in float32 (LeRobot's `apply_rope`)."""
    half = x.shape[-1] // 2
    dtype = x.dtype
    x = x.float()
    exponents = (2.0 / x.shape[-1]) * torch.arange(half, dtype=torch.float32, device=x.device)
    timescale = max_wavelength**exponents
    radians = (positions[..., None].float() / timescale[None, None, :])[..., None, :]
    sin, cos = torch.sin(radians), torch.cos(radians)
    x1, x2 = x.split(half, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """q (B, Lq, H, D), k/v (B, Lk, KVH, D), mask (B, Lq, Lk) bool (True = may attend) -> (B, Lq, H * D).

    Masked logits take float32's lowest finite value (LeRobot's big_neg): a row with no visible key gets a
    uniform softmax rather than NaN.
    """
    bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, torch.finfo(q.dtype).min)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias[:, None], enable_gqa=True
    )
    return out.transpose(1, 2).flatten(2)


class LlamaStack(nn.Module):
    """Llama decoder layers + final RMSNorm (+ token embedding), named as transformers' LlamaModel."""

    def __init__(self, hf, embed: bool):
        super().__init__()
        if embed:
            self.embed_tokens = nn.Embedding(hf.vocab_size, hf.hidden_size, hf.pad_token_id)
        self.layers = nn.ModuleList(LlamaDecoderLayer(hf, i) for i in range(hf.num_hidden_layers))
        self.norm = LlamaRMSNorm(hf.hidden_size, eps=hf.rms_norm_eps)


@dataclass
class PrefixCache:
    """One observation's prefix, reused by every denoising step.

    keys/values: per VLM layer (B, P, kv_heads, head_dim), RoPE applied; cross: per layer the expert's
    projections of them for cross-attention layers (None for self-attention layers); suffix_mask
    (B, H, P + H) what each action token may attend; suffix_positions (B, H) their RoPE positions.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    cross: list[tuple[torch.Tensor, torch.Tensor] | None]
    suffix_mask: torch.Tensor
    suffix_positions: torch.Tensor


class VLMWithExpert(nn.Module):
    """SmolVLM2 (vision, connector, cut language model) and the action expert; LeRobot's module names."""

    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        vision_cfg = cfg.vlm.vision_config
        vision_cfg._attn_implementation = "sdpa"
        self.vlm = nn.ModuleDict(
            {
                "model": nn.ModuleDict(
                    {
                        "vision_model": SmolVLMVisionTransformer(vision_cfg),
                        "connector": SmolVLMConnector(cfg.vlm),
                        "text_model": LlamaStack(cfg.text_config(), embed=True),
                    }
                )
            }
        )
        expert_cfg = cfg.expert_config()
        self.lm_expert = LlamaStack(expert_cfg, embed=False)
        text = cfg.text
        kv_width = text.num_key_value_heads * text.head_dim
        for i, layer in enumerate(self.lm_expert.layers):
            if not cfg.self_attention_layer(i):  # cross-attention: k/v project the VLM's keys/values
                out = expert_cfg.num_key_value_heads * expert_cfg.head_dim
                layer.self_attn.k_proj = nn.Linear(kv_width, out, bias=expert_cfg.attention_bias)
                layer.self_attn.v_proj = nn.Linear(kv_width, out, bias=expert_cfg.attention_bias)

    @property
    def text_model(self) -> LlamaStack:
        return self.vlm.model.text_model


class SmolVLAModel(nn.Module):
    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        if cfg.vlm is None:
            raise ValueError("SmolVLAConfig needs the VLM config (SmolVLAConfig.with_vlm)")
        self.cfg = cfg
        self.vlm_with_expert = VLMWithExpert(cfg)
        width = cfg.text.hidden_size
        expert = self.vlm_with_expert.lm_expert.norm.weight.shape[0]
        self.state_proj = nn.Linear(cfg.max_state_dim, width)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, expert)
        self.action_out_proj = nn.Linear(expert, cfg.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * expert, expert)
        self.action_time_mlp_out = nn.Linear(expert, expert)
        self.head_dim = cfg.text.head_dim

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the VLM and expert."""
        return self.vlm_with_expert.lm_expert.norm.weight.dtype

    def set_dtype(self, dtype: torch.dtype) -> SmolVLAModel:
        """VLM and expert in `dtype`; the projections stay float32."""
        self.float()
        self.vlm_with_expert.to(dtype)
        return self

    # --- prefix ---------------------------------------------------------------------------------

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, T, VLM width): vision transformer, connector, times sqrt(width)."""
        vlm = self.vlm_with_expert.vlm.model
        dtype = vlm.vision_model.embeddings.patch_embedding.weight.dtype
        features = vlm.vision_model(pixel_values=pixels.to(dtype)).last_hidden_state
        tokens = vlm.connector(features)
        return tokens * torch.tensor(tokens.shape[-1] ** 0.5, dtype=tokens.dtype, device=tokens.device)

    def embed_prefix(
        self, pixels: torch.Tensor, tokens: torch.Tensor, token_valid: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prefix tokens (B, P, W) in the model dtype, valid (B, P) and block starts (P,).

        pixels: (B, C, 3, H, W) in [-1, 1], the cameras that have an image; tokens, token_valid: (B, L);
        state: (B, max_state_dim) normalised and padded.
        """
        b, c = pixels.shape[:2]
        images = self.embed_images(pixels.flatten(0, 1))  # (B*C, T, W)
        images = images.reshape(b, c * images.shape[1], -1)
        embed = self.vlm_with_expert.text_model.embed_tokens
        lang = embed(tokens)
        lang = lang * math.sqrt(lang.shape[-1])
        state_token = self.state_proj(state.float())[:, None].to(lang.dtype)
        embs = torch.cat([images.to(lang.dtype), lang, state_token], dim=1)
        ones = torch.ones(b, images.shape[1], dtype=torch.bool, device=embs.device)
        valid = torch.cat([ones, token_valid, torch.ones(b, 1, dtype=torch.bool, device=embs.device)], dim=1)
        starts = torch.zeros(embs.shape[1], dtype=torch.bool, device=embs.device)
        starts[-1] = True  # the state token: images and prompt do not see it
        return embs, valid, starts

    def layout(self, prefix_valid: torch.Tensor, prefix_starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention mask (B, N, N) and RoPE positions (B, N) of prefix + action tokens (each its own block)."""
        b = prefix_valid.shape[0]
        h = self.cfg.chunk_size
        valid = torch.cat([prefix_valid, torch.ones(b, h, dtype=torch.bool, device=prefix_valid.device)], dim=1)
        starts = torch.cat([prefix_starts, torch.ones(h, dtype=torch.bool, device=prefix_valid.device)])
        return block_attention_mask(valid, starts), positions_from_valid(valid)

    def prefill(self, prefix: torch.Tensor, prefix_valid: torch.Tensor, prefix_starts: torch.Tensor) -> PrefixCache:
        """Run the prefix through the VLM layers once: their keys and values, and the expert's cross projections."""
        p = prefix.shape[1]
        mask, positions = self.layout(prefix_valid, prefix_starts)
        prefix_mask, prefix_positions = mask[:, :p, :p], positions[:, :p]
        layers = self.vlm_with_expert.text_model.layers
        h = prefix
        keys, values = [], []
        for i, layer in enumerate(layers):
            q, k, v = self._qkv(layer, h)
            k = apply_rope(k, prefix_positions)
            keys.append(k)
            values.append(v)
            if i == len(layers) - 1:  # its output feeds nothing at inference
                break
            att = attention(apply_rope(q, prefix_positions), k, v, prefix_mask)
            h = self._finish(layer, h, att)
        cross = []
        for i, layer in enumerate(self.vlm_with_expert.lm_expert.layers):
            if self.cfg.self_attention_layer(i):
                cross.append(None)
                continue
            attn = layer.self_attn
            shape = (*keys[i].shape[:2], -1, self.head_dim)
            k_in, v_in = (
                keys[i].flatten(2).to(attn.k_proj.weight.dtype),
                values[i].flatten(2).to(attn.v_proj.weight.dtype),
            )
            cross.append((attn.k_proj(k_in).view(shape), attn.v_proj(v_in).view(shape)))
        return PrefixCache(keys, values, cross, mask[:, p:], positions[:, p:])

    # --- suffix ---------------------------------------------------------------------------------

    def embed_suffix(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Action tokens (B, H, expert width) float32 of noisy actions x (B, H, max_action_dim) at flow time t (B,)."""
        actions = self.action_in_proj(x.float())
        time = sincos_time_embedding(t, actions.shape[-1], self.cfg.min_period, self.cfg.max_period)
        mixed = torch.cat([actions, time[:, None].expand_as(actions)], dim=-1)
        return self.action_time_mlp_out(F.silu(self.action_time_mlp_in(mixed)))

    def velocity(self, cache: PrefixCache, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Flow velocity (B, H, max_action_dim), float32, of noisy actions x at time t, reading the prefix cache."""
        h = self.embed_suffix(x, t).to(self.dtype)
        positions = cache.suffix_positions
        p = cache.keys[0].shape[1]
        for i, layer in enumerate(self.vlm_with_expert.lm_expert.layers):
            if cache.cross[i] is None:  # self-attention over the cached prefix and the action tokens
                q, k, v = self._qkv(layer, h)
                k = torch.cat([cache.keys[i], apply_rope(k, positions).to(cache.keys[i].dtype)], dim=1)
                v = torch.cat([cache.values[i], v.to(cache.values[i].dtype)], dim=1)
                att = attention(apply_rope(q, positions), k, v, cache.suffix_mask)
            else:  # cross-attention to the prefix, queries at positions from 0
                q = self._q(layer, h)
                k, v = cache.cross[i]
                local = positions - positions.min(dim=1, keepdim=True).values
                att = attention(apply_rope(q, local), k, v, cache.suffix_mask[:, :, :p])
            h = self._finish(layer, h, att)
        out = self.vlm_with_expert.lm_expert.norm(h)
        return self.action_out_proj(out[:, -self.cfg.chunk_size :].float())

    def denoiser(self, cache: PrefixCache) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The velocity field `(x, t) -> v` of one observation, for `blocks.flow` samplers."""

        def field(x: torch.Tensor, t: float) -> torch.Tensor:
            return self.velocity(cache, x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.float32))

        return field

    # --- layer pieces ---------------------------------------------------------------------------

    def _q(self, layer: LlamaDecoderLayer, h: torch.Tensor) -> torch.Tensor:
        x = layer.input_layernorm(h)
        return layer.self_attn.q_proj(x).view(*x.shape[:2], -1, self.head_dim)

    def _qkv(self, layer: LlamaDecoderLayer, h: torch.Tensor):
        """Queries (B, L, heads, D), keys and values (B, L, kv_heads, D) of one layer, before RoPE."""
        x = layer.input_layernorm(h)
        attn = layer.self_attn
        shape = (*x.shape[:2], -1, self.head_dim)
        return attn.q_proj(x).view(shape), attn.k_proj(x).view(shape), attn.v_proj(x).view(shape)

    @staticmethod
    def _finish(layer: LlamaDecoderLayer, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Output projection + residual, then post-attention RMSNorm, MLP + residual."""
        h = h + layer.self_attn.o_proj(attended.to(h.dtype))
        return h + layer.mlp(layer.post_attention_layernorm(h))
