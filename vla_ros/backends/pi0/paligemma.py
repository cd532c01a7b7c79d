"""PaliGemma with an action expert: two Gemma stacks that attend jointly, layer by layer.

Each stack keeps its own layer weights (norms, q/k/v/o projections, MLP); at every layer the
queries, keys and values of both token streams are concatenated along the sequence for one
attention (the stacks share head count and head size), then each stream continues through its
own output projection and MLP. Streams: 0 = prefix (images + language, PaliGemma's Gemma 2B),
1 = suffix (state + action tokens, the Gemma 300M-shaped expert). Either may be absent, which
gives the KV-cache passes: prefix alone fills the cache, the suffix alone reads it.

Module names follow the PyTorch π₀ checkpoint layout (openpi converter / LeRobot):
`paligemma.model.{vision_tower.vision_model, multi_modal_projector.linear, language_model}` and
`gemma_expert.model.{layers, norm}`.

π₀.5 conditions the expert on the flow time with adaptive RMSNorm: its three norms per layer
stack (`input_layernorm`, `post_attention_layernorm`, final `norm`) are `AdaRMSNorm`s whose
`dense` layer maps the time condition to a scale, a shift and a gate of the following residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GemmaConfig, SiglipVisionConfig, SiglipVisionModel
from transformers.models.gemma.modeling_gemma import (
    GemmaDecoderLayer,
    GemmaRMSNorm,
    GemmaRotaryEmbedding,
    GemmaTextScaledWordEmbedding,
    apply_rotary_pos_emb,
)

from vla_ros.backends.pi0.configuration import GemmaSpec, Pi0Config, VisionSpec

# openpi's masked logit (finite: a query with no visible key gets a uniform softmax, not NaN)
MASKED_LOGIT = -2.3819763e38


@dataclass
class KVCache:
    """The prefix of one observation, reused by every denoising step.

    keys/values: per layer (B, kv_heads, P, head_dim), RoPE applied. suffix_mask: (B, S, P + S)
    bool, what each suffix token may attend; suffix_positions: (B, S) their RoPE positions.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    suffix_mask: torch.Tensor
    suffix_positions: torch.Tensor


def hf_sizes(spec: GemmaSpec | VisionSpec) -> dict[str, int]:
    """A stack's width, MLP width, depth and heads under transformers' config names."""
    return dict(
        hidden_size=spec.width,
        intermediate_size=spec.mlp_dim,
        num_hidden_layers=spec.depth,
        num_attention_heads=spec.num_heads,
    )


def hf_gemma_config(spec: GemmaSpec, cfg: Pi0Config, vocab_size: int | None) -> GemmaConfig:
    """transformers' GemmaConfig of one stack; vocab_size None for the expert (no token embedding)."""
    special = {} if vocab_size else {"pad_token_id": None, "bos_token_id": None, "eos_token_id": None}
    return GemmaConfig(
        vocab_size=vocab_size or 1,
        **special,
        **hf_sizes(spec),
        num_key_value_heads=spec.num_kv_heads,
        head_dim=spec.head_dim,
        hidden_act="gelu_pytorch_tanh",
        rms_norm_eps=cfg.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        attention_bias=False,
    )


class AdaRMSNorm(nn.Module):
    """Adaptive RMSNorm (π₀.5): x (B, N, W), cond (B, C) -> (x / rms(x) * (1 + scale) + shift, gate).

    scale, shift, gate (B, 1, W) each come from one `dense` layer of the condition; the gate
    multiplies the branch added to the residual stream after this norm.
    """

    def __init__(self, width: int, cond_dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.dense = nn.Linear(cond_dim, 3 * width)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = x * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + self.eps)
        scale, shift, gate = self.dense(cond.to(self.dense.weight.dtype))[:, None].chunk(3, dim=-1)
        return (normed * (1 + scale.float()) + shift.float()).to(x.dtype), gate.to(x.dtype)


def apply_norm(norm: nn.Module, x: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A stack's norm: (normed x, residual gate or None for a plain Gemma RMSNorm)."""
    return norm(x, cond) if isinstance(norm, AdaRMSNorm) else (norm(x), None)


def gated_residual(x: torch.Tensor, branch: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
    return x + branch if gate is None else x + branch * gate


class GemmaStack(nn.Module):
    """Decoder layers + final norm (+ the sqrt(width)-scaled token embedding for the VLM).

    adaptive: replace the three kinds of RMSNorm by `AdaRMSNorm`s conditioned on a (B, width) vector.
    """

    def __init__(self, hf: GemmaConfig, embed: bool, adaptive: bool = False):
        super().__init__()
        if embed:
            self.embed_tokens = GemmaTextScaledWordEmbedding(
                hf.vocab_size, hf.hidden_size, hf.pad_token_id, hf.hidden_size**0.5
            )
        self.layers = nn.ModuleList(GemmaDecoderLayer(hf, i) for i in range(hf.num_hidden_layers))
        self.norm = GemmaRMSNorm(hf.hidden_size, eps=hf.rms_norm_eps)
        if adaptive:

            def norm() -> AdaRMSNorm:
                return AdaRMSNorm(hf.hidden_size, hf.hidden_size, hf.rms_norm_eps)

            for layer in self.layers:
                layer.input_layernorm, layer.post_attention_layernorm = norm(), norm()
            self.norm = norm()


class VisionTower(nn.Module):
    """SigLIP ViT: images (N, 3, S, S) in [-1, 1] -> tokens (N, T, vision width)."""

    def __init__(self, cfg: Pi0Config):
        super().__init__()
        v = cfg.vision
        self.vision_model = SiglipVisionModel(
            SiglipVisionConfig(
                **hf_sizes(v),
                image_size=v.image_size,
                patch_size=v.patch_size,
                vision_use_head=False,
                hidden_act="gelu_pytorch_tanh",
                layer_norm_eps=1e-6,
            )
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = self.vision_model.embeddings.patch_embedding.weight.dtype
        return self.vision_model(pixel_values=pixels.to(dtype)).last_hidden_state


class PaliGemmaWithExpert(nn.Module):
    def __init__(self, cfg: Pi0Config):
        super().__init__()
        self.cfg = cfg
        lm = hf_gemma_config(cfg.paligemma, cfg, cfg.vocab_size)
        projector = nn.ModuleDict({"linear": nn.Linear(cfg.vision.width, cfg.paligemma.width)})
        self.paligemma = nn.ModuleDict(
            {
                "model": nn.ModuleDict(
                    {
                        "vision_tower": VisionTower(cfg),
                        "multi_modal_projector": projector,
                        "language_model": GemmaStack(lm, embed=True),
                    }
                )
            }
        )
        expert = GemmaStack(hf_gemma_config(cfg.action_expert, cfg, None), embed=False, adaptive=cfg.pi05)
        self.gemma_expert = nn.ModuleDict({"model": expert})
        self.rotary = GemmaRotaryEmbedding(lm)  # no weights; shared by both stacks (same head_dim)

    @property
    def stacks(self) -> tuple[GemmaStack, GemmaStack]:
        return self.paligemma.model.language_model, self.gemma_expert.model

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] -> (N, T, VLM width) image tokens (not scaled)."""
        model = self.paligemma.model
        return model.multi_modal_projector.linear(model.vision_tower(pixels))

    def embed_language(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, L, VLM width), scaled by sqrt(width)."""
        return self.paligemma.model.language_model.embed_tokens(tokens)

    def forward(
        self,
        streams: tuple[torch.Tensor | None, torch.Tensor | None],
        positions: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | None = None,
        fill_cache: bool = False,
        expert_cond: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor | None], tuple[list[torch.Tensor], list[torch.Tensor]] | None]:
        """Run the present streams through every layer.

        streams: (B, N_i, width_i) or None; the queries are the present streams' tokens, in order.
        positions: (B, Nq) RoPE positions of the queries. mask: (B, Nq, Nk) bool, True = may
        attend; keys are the cache's (if given) followed by the queries' own.
        expert_cond: (B, expert width) condition of the expert's adaptive norms (π₀.5), else None.
        Returns each stream's final-normed output (None where absent) and, with `fill_cache`, the
        per-layer keys and values of this call's tokens.
        """
        present = [i for i, h in enumerate(streams) if h is not None]
        hidden = [streams[i] for i in present]
        stacks = [self.stacks[i] for i in present]
        conds = [expert_cond if i == 1 else None for i in present]
        lengths = [h.shape[1] for h in hidden]
        dtype = hidden[0].dtype
        probe = torch.empty(0, device=positions.device, dtype=torch.float32)
        cos, sin = self.rotary(probe, positions)  # float32 (B, Nq, head_dim)
        bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, MASKED_LOGIT)[:, None]
        keys, values = [], []
        for i in range(self.cfg.paligemma.depth):
            layers = [s.layers[i] for s in stacks]
            q, k, v, gates = self._qkv(layers, hidden, conds, cos, sin)
            if fill_cache:
                keys.append(k)
                values.append(v)
            if cache is not None:
                k = torch.cat([cache.keys[i], k], dim=2)
                v = torch.cat([cache.values[i], v], dim=2)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, enable_gqa=True)
            att = att.transpose(1, 2).flatten(2).split(lengths, dim=1)
            hidden = [self._finish(*args) for args in zip(layers, hidden, att, gates, conds)]
        outputs: list[torch.Tensor | None] = [None, None]
        for i, stack, h, cond in zip(present, stacks, hidden, conds):
            outputs[i] = apply_norm(stack.norm, h, cond)[0]
        return outputs, ((keys, values) if fill_cache else None)

    @staticmethod
    def _qkv(
        layers: list[GemmaDecoderLayer], hidden: list[torch.Tensor], conds: list, cos: torch.Tensor, sin: torch.Tensor
    ):
        """Queries (B, heads, Nq, hd), keys and values (B, kv_heads, Nq, hd) of all streams, RoPE applied,
        and each stream's attention-residual gate (None without adaptive norms)."""
        qs, ks, vs, gates = [], [], [], []
        for layer, h, cond in zip(layers, hidden, conds):
            x, gate = apply_norm(layer.input_layernorm, h, cond)
            gates.append(gate)
            attn = layer.self_attn
            shape = (*x.shape[:2], -1, attn.head_dim)
            qs.append(attn.q_proj(x).view(shape).transpose(1, 2))
            ks.append(attn.k_proj(x).view(shape).transpose(1, 2))
            vs.append(attn.v_proj(x).view(shape).transpose(1, 2))
        q, k, v = torch.cat(qs, 2), torch.cat(ks, 2), torch.cat(vs, 2)
        q_rot, k_rot = apply_rotary_pos_emb(q.float(), k.float(), cos, sin, unsqueeze_dim=1)
        return q_rot.to(q.dtype), k_rot.to(k.dtype), v, gates

    @staticmethod
    def _finish(layer: GemmaDecoderLayer, h: torch.Tensor, attended: torch.Tensor, gate, cond) -> torch.Tensor:
        """Output projection + (gated) residual, then the MLP block + (gated) residual (Gemma pre-norm layer)."""
        h = gated_residual(h, layer.self_attn.o_proj(attended), gate)
        x, gate = apply_norm(layer.post_attention_layernorm, h, cond)
        return gated_residual(h, layer.mlp(x), gate)
