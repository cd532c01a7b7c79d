"""The π₀ backend: checkpoint folder + settings -> model, and `predict` (with RTC guidance).

Settings: the package's `config/backends/pi0.yaml` < `<checkpoint>/pi0.yaml` < node parameters
(backends/settings.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError
from vla_ros.backends.blocks.flow import euler_integrate, rtc_guided
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.backends.pi0.checkpoint import build_model, load_checkpoint, load_weights
from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.processing import Pi0Processor
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tokenizer import PaligemmaTokenizer
from vla_ros.backends.settings import resolve_settings, settings_layers
from vla_ros.config import resolve_package_path
from vla_ros.core.robot_mapping import JointNameError, select_joints
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class Pi0Backend(Backend):
    supports_prefix = True

    def __init__(self, model: Pi0Model, processor: Pi0Processor, tokenizer: PaligemmaTokenizer, seed: int = 0):
        self.model = model
        self.cfg = model.cfg
        self.processor = processor
        self.settings = processor.settings
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.camera_names = tuple(self.settings.cameras)
        self.joint_names = self.settings.joints
        self.dt_s = self.settings.dt_s
        self.horizon = self.cfg.action_horizon
        self.steps = self.settings.steps
        self.max_guidance = self.settings.max_guidance

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        return (1, self.horizon, self.cfg.action_dim)

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = self._select_joints(
            observation.joint_names, np.asarray(observation.joint_positions, dtype=np.float64), "observation"
        )
        missing = [c for c in self.camera_names if c not in observation.images]
        if missing:
            raise BackendError(f"π₀ backend needs cameras {list(self.camera_names)}; observation lacks {missing}")
        with torch.no_grad():
            cache, state = self._encode(observation, q)
            field = self.model.denoiser(cache, state)
            if prefix is not None:
                target, weights = self._guidance_target(prefix, q, observation.stamp_s)
                field = rtc_guided(field, target, weights, self.max_guidance)
            out = euler_integrate(field, self._initial_noise(noise), self.steps)
        positions = self.processor.targets_to_actions(q, out[0].cpu().numpy())
        return ActionChunk(observation.stamp_s, self.dt_s, self.joint_names, positions, time.perf_counter() - start)

    def _select_joints(self, names: tuple[str, ...], values: np.ndarray, what: str) -> np.ndarray:
        """values (..., len(names)) -> (..., D) in `joint_names` order."""
        try:
            return select_joints(names, values, self.joint_names, f"the {what}")
        except JointNameError as exc:
            raise BackendError(f"π₀ backend expects joints {list(self.joint_names)}; {exc}") from exc

    def _encode(self, observation: Observation, q: np.ndarray):
        """Prefix KV cache and the state tensor (1, state_dim) of one observation."""
        dev = self.device
        pixels, valid = self.processor.images(observation.images)
        if self.settings.skip_masked_slots:  # masked slots take no position and are never attended
            pixels, valid = pixels[valid], valid[valid]
        ids, id_valid = self.tokenizer(observation.instruction, self.processor.prompt_state(q))
        prefix, prefix_valid = self.model.embed_prefix(
            torch.from_numpy(pixels)[None].to(dev),
            torch.from_numpy(valid)[None].to(dev),
            torch.from_numpy(ids)[None].to(dev),
            torch.from_numpy(id_valid)[None].to(dev),
        )
        state = self.processor.state_input(q)
        state = None if state is None else torch.from_numpy(state)[None].to(dev)
        return self.model.prefill(prefix, prefix_valid), state

    def _initial_noise(self, noise: np.ndarray | None) -> torch.Tensor:
        if noise is None:
            return torch.randn(self.noise_shape, generator=self.generator, device=self.device)
        noise = np.asarray(noise, dtype=np.float32)
        if noise.size != np.prod(self.noise_shape):
            raise BackendError(
                f"π₀ noise must have shape {self.noise_shape[1:]} (horizon, padded action dim), got {noise.shape}"
            )
        return torch.from_numpy(noise).reshape(self.noise_shape).to(self.device)

    def _guidance_target(self, prefix: PlanPrefix, q: np.ndarray, t0_s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The plan on this chunk's point times, in model units (1, H, action_dim), and RTC weights (H,)."""
        grid = t0_s + self.dt_s * np.arange(1, self.horizon + 1)
        targets, weights = prefix_on_grid(prefix, grid)
        targets = self._select_joints(prefix.joint_names, targets, "plan prefix")
        model_units = self.processor.actions_to_targets(q, targets)
        return (torch.from_numpy(model_units)[None].to(self.device), torch.from_numpy(weights).float().to(self.device))


def load_pi0_backend(model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0) -> Pi0Backend:
    """π₀ backend from a checkpoint folder (`model_path`, else the settings' `checkpoint`), settings
    layered over `overrides` (node parameters; see backends/settings.py)."""
    settings, sources = resolve_settings(Pi0Settings, settings_layers("pi0", model_path, overrides or {}))
    if model_path is None:
        if settings.checkpoint is None:
            raise BackendError(
                f"π₀ backend: no checkpoint folder given (model_path) and {settings.source} sets no 'checkpoint'"
            )
        model_path = resolve_package_path(settings.checkpoint)
    folder = Path(model_path)
    ckpt = load_checkpoint(folder, settings)
    try:
        processor = Pi0Processor(ckpt.cfg, ckpt.settings, ckpt.stats, ckpt.profile)
    except ValueError as exc:
        raise BackendError(f"π₀ backend ({folder}, {settings.source}): {exc}") from exc
    model = build_model(ckpt.cfg, settings.device, DTYPES[settings.dtype])
    load_weights(folder / "model.safetensors", model)
    backend = Pi0Backend(model, processor, ckpt.tokenizer, seed)
    backend.settings_sources = sources
    backend.provenance = ckpt.provenance
    return backend
