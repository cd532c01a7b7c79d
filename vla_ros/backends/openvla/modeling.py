"""The Prismatic VLM of OpenVLA: fused ViT towers -> MLP projector -> Llama-2 (transformers).

Module names match the checkpoint's keys: `vision_backbone.featurizer` / `.fused_featurizer`
(timm layout, `blocks.vit`), `projector.fc1/fc2[/fc3]`, `language_model` (`LlamaForCausalLM`).
Patch embeddings are inserted right after the BOS token. Decoding is greedy with a KV cache.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, StaticCache

from vla_ros.backends.blocks.vit import VisionTransformer
from vla_ros.backends.openvla.configuration import OpenVLAConfig


class VisionBackbone(nn.Module):
    """(B, 3 * towers, S, S) normalised pixels -> (B, N, sum of tower widths) patch features."""

    def __init__(self, cfg: OpenVLAConfig):
        super().__init__()
        self.featurizer = VisionTransformer(cfg.towers[0])
        if cfg.fused:
            self.fused_featurizer = VisionTransformer(cfg.towers[1])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        towers = [self.featurizer] + ([self.fused_featurizer] if hasattr(self, "fused_featurizer") else [])
        chunks = torch.split(pixels, 3, dim=1)
        # features of the second-to-last block, as Prismatic trained them
        return torch.cat([t.features(x, len(t.blocks) - 2) for t, x in zip(towers, chunks)], dim=2)


class Projector(nn.Module):
    """GELU MLP from vision features to the LLM width: fused D -> 4D -> H -> H, single D -> H -> H."""

    def __init__(self, cfg: OpenVLAConfig):
        super().__init__()
        d, h = cfg.vision_dim, cfg.hidden_size
        if cfg.fused:
            self.fc1, self.fc2, self.fc3 = nn.Linear(d, 4 * d), nn.Linear(4 * d, h), nn.Linear(h, h)
        else:
            self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, h)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act(self.fc1(x)))
        return self.fc3(self.act(x)) if hasattr(self, "fc3") else x


def llama_config(cfg: OpenVLAConfig, attention: str = "sdpa") -> LlamaConfig:
    text = {k: v for k, v in cfg.text_config.items() if k not in ("model_type", "torch_dtype", "architectures")}
    out = LlamaConfig(**text)
    out._attn_implementation = attention
    return out


class OpenVLAModel(nn.Module):
    def __init__(self, cfg: OpenVLAConfig, attention: str = "sdpa"):
        super().__init__()
        self.cfg = cfg
        self.vision_backbone = VisionBackbone(cfg)
        self.projector = Projector(cfg)
        self.language_model = LlamaForCausalLM(llama_config(cfg, attention))

    def set_dtype(self, dtype: torch.dtype) -> OpenVLAModel:
        return self.to(dtype)

    def embed(self, pixels: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """pixels (1, 3 * towers, S, S), input_ids (1, L) starting with BOS -> embeddings (1, 1 + N + L - 1, H)."""
        patches = self.projector(self.vision_backbone(pixels.to(self.projector.fc1.weight.dtype)))
        tokens = self.language_model.get_input_embeddings()(input_ids)
        return torch.cat([tokens[:, :1], patches, tokens[:, 1:]], dim=1)

    def new_cache(self, max_len: int, static: bool):
        if static:
            return StaticCache(config=self.language_model.config, max_cache_len=max_len)
        return DynamicCache(config=self.language_model.config)

    @torch.no_grad()
    def greedy_decode(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, steps: int, static_cache: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy tokens (steps,) and the logits each was picked from (steps, vocab), float32.

        One prefill over [BOS, patches, prompt] then one cached step per token, all positions
        attended (batch of one, no padding).
        """
        embeds = self.embed(pixels, input_ids)
        n = embeds.shape[1]
        cache = self.new_cache(n + steps, static_cache)
        positions = torch.arange(n, device=embeds.device)
        logits, tokens = [], []
        out = self.language_model(inputs_embeds=embeds, past_key_values=cache, cache_position=positions, use_cache=True, logits_to_keep=1)
        for i in range(steps):
            step_logits = out.logits[0, -1].float()
            token = step_logits.argmax()
            logits.append(step_logits)
            tokens.append(token)
            if i + 1 < steps:
                out = self.language_model(
                    input_ids=token.view(1, 1), past_key_values=cache, cache_position=positions[-1:] + i + 1, use_cache=True,
                )
        return torch.stack(tokens), torch.stack(logits)
