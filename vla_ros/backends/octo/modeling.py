"""Octo in PyTorch with Flax's numerics: the released models (octo-small-1.5, octo-base-1.5 and fine-tunes) and,
through config options, the bundled demo model (README: the demo model's options).

Sequence: [task_language (L)] + per timestep t [obs_<image> ..., obs_proprio (optional), obs_task_language
(repeated task tokens, optional), readout_action]; attention by Octo's group rules (attention_rules.py),
padding masks keys only and a masked logit gets float32's minimum (Flax), so a query without any allowed
key attends uniformly. Images are (B, T, 3, H, W) in [-1, 1]; a goal image (B, 3, H, W) is stacked on the
channels of every timestep (no goal: -1, the scaled zero image). The action head mean-pools the readout
tokens and runs the diffusion MLP-ResNet on [time features, embedding, noisy flattened chunk].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.backends.blocks.diffusion import DDPMSchedule, cosine_beta_schedule, rtc_guided_denoiser, sample_clipping_x
from vla_ros.backends.blocks.embeddings import LearnedFourierFeatures, MLPResNet
from vla_ros.backends.blocks.transformer import Transformer
from vla_ros.backends.octo import attention_rules as rules
from vla_ros.backends.octo.configuration import ImageGroupConfig, OctoNetConfig

LANGUAGE = "task_language"
READOUT = "readout_action"
PROPRIO = "obs_proprio"


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Bool mask -> additive mask: 0 where allowed, the dtype's minimum elsewhere (Flax's masking)."""
    return torch.zeros(allowed.shape, device=allowed.device, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


class StdConv2d(nn.Conv2d):
    """Weight-standardised convolution (Octo's SmallStem)."""

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


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + 2, H, W): the pixel's x then y in [-1, 1] stacked on the channels."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, xs, ys], 1)


class SmallStem(nn.Module):
    """(B, C, H, W) in [-1, 1] -> (B, h*w, num_features), tokens in row-major order. With `use_film`, each
    conv's normalised output is FiLM-conditioned on `cond` (B, cond_dim) before its ReLU."""

    def __init__(self, cfg: ImageGroupConfig, cond_dim: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = cfg.in_channels
        for c, groups in zip(cfg.features, cfg.groups):
            layers += [StdConv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(groups, c, eps=1e-6), nn.ReLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.films = nn.ModuleList(FiLM(cond_dim, c) for c in cfg.features) if cfg.use_film else None
        self.coord_channels = cfg.coord_channels
        k = cfg.patch_size // 16
        self.embedding = nn.Conv2d(c_in, cfg.num_features, k, stride=k)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.coord_channels:
            x = coordinate_channels(x)
        for i in range(0, len(self.convs), 3):
            x = self.convs[i + 1](self.convs[i](x))
            x = self.convs[i + 2](x if self.films is None else self.films[i // 3](x, cond))
        return self.embedding(x).flatten(2).transpose(1, 2)


class WordEncoder(nn.Module):
    """Word ids (B, L) and their mask (B, L) bool -> states (B, L, D): embedding, learned positions and a small
    bidirectional transformer over the valid words (the demo model's stand-in for T5, trained with it)."""

    def __init__(self, cfg: OctoNetConfig):
        super().__init__()
        self.embed = nn.Embedding(len(cfg.vocab) + 2, cfg.language_dim)
        self.pos = nn.Parameter(torch.randn(1, cfg.language_tokens, cfg.language_dim) * 0.02)
        self.encoder = Transformer(cfg.language_dim, cfg.text_layers, cfg.num_heads, cfg.mlp_dim)

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid[:, None, :] | torch.eye(ids.shape[1], dtype=torch.bool, device=ids.device)[None]
        return self.encoder(self.embed(ids) + self.pos, mask)


class DiffusionHead(nn.Module):
    """Noise prediction of the flattened chunk from the readout embedding (Octo's DiffusionActionHead)."""

    def __init__(self, cfg: OctoNetConfig):
        super().__init__()
        flat = cfg.action_horizon * cfg.action_dim
        self.cfg = cfg
        self.time_features = LearnedFourierFeatures(cfg.time_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.time_dim, 2 * cfg.time_dim), nn.SiLU(), nn.Linear(2 * cfg.time_dim, cfg.time_dim)
        )
        self.net = MLPResNet(
            cfg.time_dim + cfg.width + flat, cfg.head_hidden, flat, cfg.head_blocks, cfg.dropout_rate,
            eps=cfg.head_eps, layer_norm=cfg.head_layer_norm,
        )  # fmt: skip
        self.register_buffer("betas", cosine_beta_schedule(cfg.diffusion_steps, dtype=torch.float32), persistent=False)
        self.schedule = DDPMSchedule(cfg.diffusion_steps)  # training, the x0-clipping sampler, RTC guidance

    def forward(self, embedding: torch.Tensor, noisy: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """embedding (..., W), noisy (..., H*A), k (..., 1) integer diffusion step -> noise (..., H*A)."""
        dtype = self.net.inp.weight.dtype
        t = k.to(dtype) / self.cfg.diffusion_steps if self.cfg.time_fraction else k.to(dtype)
        time = self.time_mlp(self.time_features(t))
        x = torch.cat([time, embedding.to(dtype).expand(*time.shape[:-1], -1), noisy.to(dtype)], -1)
        return self.net(x).to(noisy.dtype)

    def loss(
        self, embedding: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noise-prediction MSE for normalised chunks (B, H, A), `n_diffusion_samples` draws per embedding (B, W)."""
        n = self.cfg.n_diffusion_samples
        x0 = actions.flatten(1).repeat(n, 1)
        embedding = embedding.repeat(n, 1)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        k = torch.randint(0, self.cfg.diffusion_steps, (x0.shape[0],), generator=generator, device=x0.device)
        return F.mse_loss(self(embedding, self.schedule.add_noise(x0, noise, k), k[:, None]), noise)

    def sample(
        self,
        embedding: torch.Tensor,
        noises: torch.Tensor,
        action_dim: int | None = None,
        guide: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    ) -> torch.Tensor:
        """Chunks (B, H, A) from embeddings (B, W) and the noise sequence (K + 1, B, H*A) (see
        blocks.diffusion.sample_clipping_x); dims from `action_dim` on are the embodiment's missing ones.

        guide: (target (B, H, A), weights (H,), max_guidance): Real-Time Chunking toward a running plan."""
        cfg = self.cfg

        def denoise(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return self(embedding, x, k.reshape(*x.shape[:-1], 1))

        if guide is not None:
            denoise = rtc_guided_denoiser(denoise, self.schedule, *guide)
        valid = None
        if action_dim is not None and action_dim < cfg.action_dim:
            if cfg.clip_x0:
                raise ValueError(f"clip_x0 sampling has no masked action dims (action_dim {action_dim})")
            valid = (torch.arange(cfg.action_dim, device=noises.device) < action_dim).repeat(cfg.action_horizon)
        if cfg.clip_x0:
            x = self.schedule.sample(denoise, noises[0], clip=cfg.max_action, draws=noises)
        else:
            x = sample_clipping_x(denoise, noises, self.betas, cfg.max_action, valid)
        return x.unflatten(-1, (cfg.action_horizon, cfg.action_dim))


class OctoNet(nn.Module):
    """Octo's transformer (tokenizers, group projections, positional embeddings, block transformer) and
    its diffusion action head."""

    def __init__(self, cfg: OctoNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.stems = nn.ModuleDict({g.name: SmallStem(g, cfg.language_dim) for g in cfg.images})
        self.obs_projections = nn.ModuleDict({g.name: nn.Linear(g.num_features, w) for g in cfg.images})
        self.obs_pos = nn.ParameterDict(
            {g.name: nn.Parameter(torch.randn(1, cfg.max_horizon, g.n_tokens, w) * 0.02) for g in cfg.images}
        )
        if cfg.proprio_dim:
            self.proprio_projection = nn.Linear(cfg.proprio_dim, w)
            self.proprio_pos = nn.Parameter(torch.randn(1, cfg.max_horizon, 1, w) * 0.02)
        if cfg.language:
            if cfg.language_encoder == "words":
                self.text_encoder = WordEncoder(cfg)
            self.language_projection = nn.Linear(cfg.language_dim, w)
            self.language_pos = nn.Parameter(torch.randn(1, cfg.language_tokens, w) * 0.02)
        self.readout_pos = nn.Parameter(torch.randn(1, cfg.max_horizon, cfg.readout_tokens, w) * 0.02)
        self.transformer = Transformer(w, cfg.depth, cfg.num_heads, cfg.mlp_dim)
        self.head = DiffusionHead(cfg)
        self._masks: dict[tuple, torch.Tensor] = {}

    def groups(self, language: bool) -> tuple[list[rules.TokenGroup], list[rules.TokenGroup]]:
        """The prefix and timestep token groups, in sequence order (language: a language task is given)."""
        cfg = self.cfg
        prefix = [rules.TokenGroup(LANGUAGE, cfg.language_tokens, rules.TASK_RULES)] if language else []
        timestep = [rules.TokenGroup(f"obs_{g.name}", g.n_tokens, rules.OBS_RULES) for g in cfg.images]
        if cfg.proprio_dim:
            timestep.append(rules.TokenGroup(PROPRIO, 1, rules.OBS_RULES))
        if language and cfg.repeat_task_tokens:
            timestep.append(rules.TokenGroup(f"obs_{LANGUAGE}", cfg.language_tokens, rules.OBS_RULES))
        timestep.append(rules.TokenGroup(READOUT, cfg.readout_tokens, rules.readout_rules(READOUT)))
        return prefix, timestep

    def rule_mask(self, language: bool, horizon: int, device: torch.device) -> torch.Tensor:
        """(N, N) bool group-rule mask, cached per layout."""
        key = (language, horizon, str(device))
        if key not in self._masks:
            prefix, timestep = self.groups(language)
            mask = rules.rule_mask(prefix, timestep, horizon, self.cfg.use_correct_attention)
            self._masks[key] = torch.from_numpy(mask).to(device)
        return self._masks[key]

    def tokens(
        self,
        images: dict[str, torch.Tensor],
        image_valid: dict[str, torch.Tensor],
        goals: dict[str, torch.Tensor] | None,
        language: torch.Tensor | None,
        language_valid: torch.Tensor | None,
        timestep_valid: torch.Tensor,
        proprio: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Input tokens (B, N, W) and key pad mask (B, N) bool; see `forward` for the arguments."""
        cfg = self.cfg
        b, t = timestep_valid.shape
        prefix_tokens, prefix_valid, step_tokens, step_valid = [], [], [], []
        cond = None
        if language is not None:
            task = self.language_projection(language) + self.language_pos
            lang_valid = language_valid
            if lang_valid.dim() == 1:  # one flag per task: every token counts (the reference)
                lang_valid = lang_valid[:, None].expand(b, cfg.language_tokens)
            prefix_tokens.append(task)
            prefix_valid.append(lang_valid)
            if any(g.use_film for g in cfg.images):  # FiLM's condition: the mean valid language state
                pooled = (language * lang_valid[..., None]).sum(1) / lang_valid.sum(1, keepdim=True).clamp(min=1)
                cond = pooled[:, None].expand(b, t, -1).flatten(0, 1)
        for g in cfg.images:
            x = images[g.name]
            if g.goal:
                goal = goals.get(g.name) if goals else None
                goal = torch.full_like(x[:, 0], -1.0) if goal is None else goal
                x = torch.cat([x, goal[:, None].expand_as(x)], 2)
            if g.use_film and cond is None:
                raise ValueError(f"image tokenizer {g.name} uses FiLM: a language task is needed")
            feats = self.stems[g.name](x.flatten(0, 1), cond).unflatten(0, (b, t))
            step_tokens.append(self.obs_projections[g.name](feats) + self.obs_pos[g.name][:, :t])
            valid = image_valid[g.name] & timestep_valid
            step_valid.append(valid[..., None].expand(b, t, g.n_tokens))
        if cfg.proprio_dim:
            if proprio is None:
                raise ValueError(f"the model takes a proprio token: proprio (B, T, {cfg.proprio_dim}) is needed")
            step_tokens.append(self.proprio_projection(proprio)[:, :, None] + self.proprio_pos[:, :t])
            step_valid.append(timestep_valid[..., None])
        if language is not None and cfg.repeat_task_tokens:
            step_tokens.append(task[:, None].expand(b, t, -1, -1))
            step_valid.append(lang_valid[:, None].expand(b, t, -1))
        step_tokens.append(self.readout_pos[:, :t].expand(b, -1, -1, -1))
        step_valid.append(torch.ones(b, t, cfg.readout_tokens, dtype=torch.bool, device=timestep_valid.device))
        tokens = torch.cat(prefix_tokens + [torch.cat(step_tokens, 2).flatten(1, 2)], 1)
        valid = torch.cat(prefix_valid + [torch.cat(step_valid, 2).flatten(1, 2)], 1)
        return tokens, valid

    def forward(
        self,
        images: dict[str, torch.Tensor],
        image_valid: dict[str, torch.Tensor],
        timestep_valid: torch.Tensor,
        goals: dict[str, torch.Tensor] | None = None,
        language: torch.Tensor | None = None,
        language_valid: torch.Tensor | None = None,
        proprio: torch.Tensor | None = None,
        language_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Readout embeddings (B, T, readout_tokens, W).

        images: tokenizer name -> (B, T, 3, H, W) in [-1, 1]; image_valid: name -> (B, T) bool (False: a
        missing camera); timestep_valid (B, T) bool (False: history padding at an episode's start);
        goals: name -> (B, 3, H, W) in [-1, 1] or absent; language (B, L, language_dim): the T5 encoder's
        output or `text_encoder`'s, language_valid (B,) bool (a pad token is not masked, as in the
        reference) or (B, L) bool per token; proprio (B, T, proprio_dim): the normalised state;
        language_ids (B, L) int64: word ids for `text_encoder` (language_encoder 'words'), whose output is then
        `language`, with language_valid (B, L) its mask.
        """
        if language_ids is not None:
            language = self.text_encoder(language_ids, language_valid)
        t = timestep_valid.shape[1]
        if t > self.cfg.max_horizon:
            raise ValueError(f"window of {t} timesteps exceeds the model's max_horizon {self.cfg.max_horizon}")
        tokens, valid = self.tokens(images, image_valid, goals, language, language_valid, timestep_valid, proprio)
        mask = self.rule_mask(language is not None, t, tokens.device)[None] & valid[:, None, :]
        out = self.transformer(tokens, additive_mask(mask, tokens.dtype))
        prefix = self.cfg.language_tokens if language is not None else 0
        return out[:, prefix:].unflatten(1, (t, -1))[:, :, -self.cfg.readout_tokens :]

    def embedding(self, readouts: torch.Tensor) -> torch.Tensor:
        """The head's input: readout tokens (..., R, W) mean-pooled -> (..., W)."""
        return readouts.mean(-2)

    def embed_step(
        self, images: dict[str, torch.Tensor], proprio: torch.Tensor | None, ids: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """The head's input (B, W) for a one-step window with a word task (training the demo model).

        images: name -> (B, 3, H, W) in [-1, 1], all present; proprio (B, proprio_dim) normalised; ids, valid
        (B, L): word ids and their mask (WordTokenizer)."""
        if self.cfg.language_encoder != "words":
            raise ValueError(f"embed_step takes word ids: language_encoder is {self.cfg.language_encoder!r}")
        b = ids.shape[0]
        step = torch.ones(b, 1, dtype=torch.bool, device=ids.device)
        readouts = self(
            images={name: x[:, None] for name, x in images.items()},
            image_valid={name: step for name in images},
            timestep_valid=step,
            language_valid=valid,
            proprio=None if proprio is None else proprio[:, None],
            language_ids=ids,
        )
        return self.embedding(readouts[:, -1])
