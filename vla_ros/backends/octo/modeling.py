"""Octo-design model in PyTorch (tiny sizes from `OctoConfig`).

Tokens, in order: task (language) | observation (per camera patches + proprio) | readout.
Blockwise-causal attention (Octo): task tokens see task tokens; observation tokens see task
tokens and observations of the same or earlier timestep; readouts see task, observations of
their timestep or earlier, and their own readout group; nothing attends to a readout from
outside its group. Padding masks keys only. The readout embedding conditions a diffusion
head (MLP-ResNet) that predicts the noise of the flattened, normalised action chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.backends.blocks.diffusion import DDPMSchedule, rtc_guided_denoiser
from vla_ros.backends.blocks.embeddings import LearnedFourierFeatures, MLPResNet
from vla_ros.backends.blocks.transformer import Transformer
from vla_ros.backends.octo.configuration import OctoConfig

TASK, OBS, READOUT = 0, 1, 2


def blockwise_causal_mask(kinds: torch.Tensor, steps: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
    """Octo's attention rule.

    kinds (N,) in {TASK, OBS, READOUT}; steps (N,) the timestep of each token (task: 0);
    key_valid (B, N) bool (padding). Returns (B, N, N) bool, True where query i may attend key j.
    """
    qk, kk = kinds[:, None], kinds[None, :]
    qs, ks = steps[:, None], steps[None, :]
    sees_task = kk == TASK
    sees_obs = (kk == OBS) & (qk != TASK) & (ks <= qs)
    sees_readout = (kk == READOUT) & (qk == READOUT) & (ks == qs)
    allowed = sees_task | sees_obs | sees_readout
    mask = allowed[None] & key_valid[:, None, :]
    # a query with no valid key (cannot happen with a valid proprio token) would give NaNs: let it see itself
    return mask | torch.eye(len(kinds), dtype=torch.bool, device=kinds.device)[None]


class StdConv2d(nn.Conv2d):
    """Weight-standardised convolution (as in Octo's SmallStem)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True, unbiased=False) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class FiLM(nn.Module):
    """x * (1 + gamma(c)) + beta(c) per channel; zero-initialised, so it starts as the identity."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


class ImageTokenizer(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> (B, P, W) patch tokens with a learned position embedding.

    With `coord_channels`, two channels holding the pixel's x and y in [-1, 1] are stacked on the
    input (CoordConv), so conv features know where in the fixed camera's view they are. With
    `film`, every conv stage is FiLM-conditioned on the pooled language embedding (Octo's
    tokenizers' `use_film`, as in RT-1), so the features can depend on what the task asks for.
    """

    def __init__(self, cfg: OctoConfig):
        super().__init__()
        self.coord_channels = cfg.coord_channels
        self.convs, self.norms, self.films = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c_in = 3 + (2 if cfg.coord_channels else 0)
        for c in cfg.stem_channels:
            self.convs.append(StdConv2d(c_in, c, 3, stride=2, padding=1))
            self.norms.append(nn.GroupNorm(min(32, c // 4), c, eps=1e-6))
            self.films.append(FiLM(cfg.width, c) if cfg.film else nn.Identity())
            c_in = c
        self.proj = nn.Conv2d(c_in, cfg.width, 1)
        self.pos = nn.Parameter(torch.randn(1, cfg.patches_per_image, cfg.width) * 0.02)

    def forward(self, image: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """task (B, W): pooled language embedding (used with `film`)."""
        x = image
        if self.coord_channels:
            b, _, h, w = x.shape
            ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
            xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
            x = torch.cat([x, xs, ys], 1)
        for conv, norm, film in zip(self.convs, self.norms, self.films):
            x = norm(conv(x))
            x = torch.relu(film(x, task) if isinstance(film, FiLM) else x)
        return self.proj(x).flatten(2).transpose(1, 2) + self.pos


class LanguageEncoder(nn.Module):
    """Token ids (B, L) -> (B, L, W): embedding + a small bidirectional transformer."""

    def __init__(self, cfg: OctoConfig, vocab_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.width)
        self.pos = nn.Parameter(torch.randn(1, cfg.max_tokens, cfg.width) * 0.02)
        self.encoder = Transformer(cfg.width, cfg.text_layers, cfg.num_heads, cfg.mlp_dim)

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid[:, None, :] | torch.eye(ids.shape[1], dtype=torch.bool, device=ids.device)[None]
        return self.encoder(self.embed(ids) + self.pos, mask)


class OctoModel(nn.Module):
    def __init__(self, cfg: OctoConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.language = LanguageEncoder(cfg, len(cfg.vocab) + 2)
        self.task_proj = nn.Linear(w, w)
        self.image_tokenizers = nn.ModuleDict({c: ImageTokenizer(cfg) for c in cfg.camera_names})
        self.proprio = nn.Linear(cfg.action_dim, w)
        self.readout = nn.Parameter(torch.randn(1, 1, w) * 0.02)
        self.group_embed = nn.Parameter(torch.randn(3, w) * 0.02)  # task / observation / readout
        self.transformer = Transformer(w, cfg.depth, cfg.num_heads, cfg.mlp_dim)
        flat = cfg.horizon * cfg.action_dim
        self.time_features = LearnedFourierFeatures(cfg.time_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.time_dim, 2 * cfg.time_dim), nn.SiLU(), nn.Linear(2 * cfg.time_dim, cfg.time_dim)
        )
        self.head = MLPResNet(cfg.time_dim + w + flat, cfg.head_hidden, flat, cfg.head_blocks, cfg.dropout)
        self.schedule = DDPMSchedule(cfg.diffusion_steps)
        n_obs = len(cfg.camera_names) * cfg.patches_per_image + 1
        kinds = [TASK] * cfg.max_tokens + [OBS] * n_obs + [READOUT]
        self.register_buffer("token_kinds", torch.tensor(kinds), persistent=False)
        self.register_buffer("token_steps", torch.zeros(len(kinds), dtype=torch.long), persistent=False)

    def embed(
        self, images: dict[str, torch.Tensor], state: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Readout embedding (B, W) from images (B, 3, S, S) in [-1, 1], normalised state (B, D), text."""
        b = state.shape[0]
        language = self.language(ids, valid)
        pooled = (language * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        task = self.task_proj(language) + self.group_embed[TASK]
        obs = [self.image_tokenizers[c](images[c], pooled) for c in self.cfg.camera_names]
        obs.append(self.proprio(state)[:, None])
        obs = torch.cat(obs, 1) + self.group_embed[OBS]
        readout = self.readout.expand(b, -1, -1) + self.group_embed[READOUT]
        tokens = torch.cat([task, obs, readout], 1)
        key_valid = torch.cat([valid, torch.ones(b, obs.shape[1] + 1, dtype=torch.bool, device=valid.device)], 1)
        mask = blockwise_causal_mask(self.token_kinds, self.token_steps, key_valid)
        return self.transformer(tokens, mask)[:, -1]

    def predict_noise(self, embedding: torch.Tensor, noisy: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Noise (B, H*D) of the noisy flattened chunk at diffusion step k (B,)."""
        t = (k.float() / self.cfg.diffusion_steps)[:, None]
        time = self.time_mlp(self.time_features(t))
        return self.head(torch.cat([time, embedding, noisy], -1))

    def loss(
        self, embedding: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Diffusion loss for normalised action chunks (B, H, D), `diffusion_samples` noise draws each."""
        n = self.cfg.diffusion_samples
        x0 = actions.flatten(1).repeat(n, 1)
        embedding = embedding.repeat(n, 1)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        k = torch.randint(0, self.cfg.diffusion_steps, (x0.shape[0],), generator=generator, device=x0.device)
        pred = self.predict_noise(embedding, self.schedule.add_noise(x0, noise, k), k)
        return F.mse_loss(pred, noise)

    @torch.no_grad()
    def sample(
        self,
        embedding: torch.Tensor,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
        guide: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    ) -> torch.Tensor:
        """Normalised action chunks (B, H, D) denoised from `noise` (B, H, D).

        guide: (target (B, H, D), weights (H,), max_guidance) for Real-Time Chunking inpainting.
        """
        denoise = lambda x, k: self.predict_noise(embedding, x, k)  # noqa: E731
        if guide is not None:
            denoise = rtc_guided_denoiser(denoise, self.schedule, *guide)
        x = self.schedule.sample(denoise, noise.flatten(1), generator)
        return x.view(-1, self.cfg.horizon, self.cfg.action_dim)
