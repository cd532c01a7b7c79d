"""The Prismatic VLM of OpenVLA: fused ViT towers -> MLP projector -> Llama-2 (transformers).

Module names match the checkpoint's keys: `vision_backbone.featurizer` / `.fused_featurizer`
(timm layout, `blocks.vit`), `projector.fc1/fc2[/fc3]`, `language_model` (`LlamaForCausalLM`).
Patch embeddings are inserted right after the BOS token. OpenVLA decodes greedily with a KV cache;
OpenVLA-OFT decodes a whole chunk in one bidirectional pass over empty action embeddings and
regresses it with an MLP-ResNet head (`L1RegressionActionHead`, optional `ProprioProjector`).
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
        """Several images (OFT) stack along channels, (B, 3 * towers * images, S, S) -> (B, N * images, D)."""
        towers = [self.featurizer] + ([self.fused_featurizer] if hasattr(self, "fused_featurizer") else [])
        images = torch.split(pixels, 3 * len(towers), dim=1)
        # features of the second-to-last block, as Prismatic trained them
        return torch.cat(
            [
                torch.cat(
                    [t.features(x, len(t.blocks) - 2) for t, x in zip(towers, torch.split(image, 3, dim=1))], dim=2
                )
                for image in images
            ],
            dim=1,
        )


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

    def embed(self, pixels: torch.Tensor, input_ids: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """pixels (1, 3 * towers, S, S), input_ids (1, L) starting with BOS -> embeddings (1, 1 + N + L - 1, H).

        extra: (1, K, H) embeddings appended after the patches (OFT's proprio token).
        """
        patches = self.projector(self.vision_backbone(pixels.to(self.projector.fc1.weight.dtype)))
        if extra is not None:
            patches = torch.cat([patches, extra.to(patches.dtype)], dim=1)
        tokens = self.language_model.get_input_embeddings()(input_ids)
        return torch.cat([tokens[:, :1], patches, tokens[:, 1:]], dim=1)

    def new_cache(self, max_len: int, static: bool):
        if static:
            return StaticCache(config=self.language_model.config, max_cache_len=max_len)
        return DynamicCache(config=self.language_model.config)

    @torch.no_grad()
    def prefill(self, embeds: torch.Tensor, cache) -> torch.Tensor:
        """Run [BOS, patches, prompt] (1, P, H) into `cache`; the next-token logits (vocab,) float32."""
        positions = torch.arange(embeds.shape[1], device=embeds.device)
        out = self.language_model(
            inputs_embeds=embeds, past_key_values=cache, cache_position=positions, use_cache=True, logits_to_keep=1
        )
        return out.logits[0, -1].float()

    @torch.no_grad()
    def step(self, token: torch.Tensor, position: int, cache) -> torch.Tensor:
        """Feed one token (scalar id) at sequence `position`; the next-token logits (vocab,) float32."""
        positions = torch.tensor([position], device=token.device)
        out = self.language_model(
            input_ids=token.view(1, 1), past_key_values=cache, cache_position=positions, use_cache=True
        )
        return out.logits[0, -1].float()

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
        logits = [self.prefill(embeds, cache)]
        tokens = [logits[0].argmax()]
        for i in range(1, steps):
            logits.append(self.step(tokens[-1], n + i - 1, cache))
            tokens.append(logits[-1].argmax())
        return torch.stack(tokens), torch.stack(logits)

    @torch.no_grad()
    def parallel_hidden(self, embeds: torch.Tensor, num_action_tokens: int, stop_token_id: int) -> torch.Tensor:
        """OFT's one pass: `embeds` (1, P, H) of [BOS, patches (+ proprio), prompt] followed by
        `num_action_tokens` zero (empty) embeddings and the stop token, every position attending to every
        other. Returns the last hidden states (1, num_action_tokens, H) the head reads: they start at the
        prompt's last position, one before the first empty embedding (as the reference slices them)."""
        lm = self.language_model
        stop = lm.get_input_embeddings()(torch.tensor([[stop_token_id]], device=embeds.device))
        empty = torch.zeros(1, num_action_tokens, embeds.shape[2], dtype=embeds.dtype, device=embeds.device)
        sequence = torch.cat([embeds, empty, stop], dim=1)
        everything = torch.ones(1, 1, sequence.shape[1], sequence.shape[1], dtype=torch.bool, device=embeds.device)
        hidden = lm.model(inputs_embeds=sequence, attention_mask=everything).last_hidden_state
        start = embeds.shape[1] - 1
        return hidden[:, start : start + num_action_tokens]


class ResidualBlock(nn.Module):
    """x + ReLU(Linear(LayerNorm(x))); parameters as `ffn.0` (norm) and `ffn.1` (linear)."""

    def __init__(self, dim: int):
        super().__init__()
        self.ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffn(x)


class MLPResNet(nn.Module):
    def __init__(self, num_blocks: int, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(input_dim)
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.mlp_resnet_blocks = nn.ModuleList(ResidualBlock(hidden_dim) for _ in range(num_blocks))
        self.layer_norm2 = nn.LayerNorm(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.fc1(self.layer_norm1(x)))
        for block in self.mlp_resnet_blocks:
            x = block(x)
        return self.fc2(self.layer_norm2(x))


class L1RegressionActionHead(nn.Module):
    """OFT's continuous head: the A hidden states of one chunk step, concatenated (A * H), -> A actions."""

    def __init__(self, hidden_size: int, action_dim: int, num_blocks: int = 2):
        super().__init__()
        self.action_dim = action_dim
        self.model = MLPResNet(num_blocks, hidden_size * action_dim, hidden_size, action_dim)

    def forward(self, action_hidden: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """(B, chunk_size * A, H) -> normalised actions (B, chunk_size, A)."""
        return self.model(action_hidden.reshape(action_hidden.shape[0], chunk_size, -1))


class ProprioProjector(nn.Module):
    """Normalised proprio (B, P) -> one LLM token (B, 1, H): fc1, GELU, fc2."""

    def __init__(self, hidden_size: int, proprio_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.act = nn.GELU()

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(proprio)))[:, None]
