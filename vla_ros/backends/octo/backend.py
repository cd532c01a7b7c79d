"""The Octo backend for demo-style checkpoints (the bundled demo model, `vla-ros train` output): `predict`
(with RTC guidance) over the one Octo implementation (OctoNet) with the checkpoint's options; released
models converted by `vla-ros convert octo` go to backend_release.py.

Checkpoint files: backends/octo/checkpoint.py; settings layers: backends/settings.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError, backend_joints
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.backends.normalization import DatasetStatistics
from vla_ros.backends.octo.backend_release import load_release_backend
from vla_ros.backends.octo.checkpoint import is_release_folder, load_config, load_model
from vla_ros.backends.octo.configuration import OctoConfig, OctoSettings
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.backends.octo.processing import OctoProcessor
from vla_ros.backends.octo.text import WordTokenizer
from vla_ros.backends.settings import resolve_settings, settings_layers
from vla_ros.core.robot_mapping import JointNameError, RobotMapping
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix


class OctoBackend(Backend):
    supports_prefix = True

    def __init__(
        self,
        net: OctoNet,
        cfg: OctoConfig,
        stats: DatasetStatistics,
        settings: OctoSettings = OctoSettings(),
        seed: int = 0,
    ):
        self.net = net
        self.cfg = cfg
        self.settings = settings
        try:
            self.mapping: RobotMapping = settings.mapping(self.cfg)
            self.processor = OctoProcessor(self.cfg, stats)
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        self.tokenizer = WordTokenizer(self.cfg.vocab, self.cfg.max_tokens)
        self.device = next(net.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.camera_names = tuple(self.mapping.cameras)
        self.joint_names = self.mapping.joints
        self.dt_s = self.cfg.dt_s
        self.horizon = self.cfg.horizon
        self.max_guidance = settings.max_guidance
        self.relative_joints = self.mapping.relative_joints
        if settings.action_space is not None:  # the settings' statement of the checkpoint's convention
            self.action_space, self.action_space_source = settings.action_space, settings.source
        else:
            self.action_space, self.action_space_source = self.cfg.action_space or None, "octo checkpoint config.json"
        if self.action_space is None:  # joint positions need no robot; other spaces wait for bind_robot
            self.bind_robot(None)

    def bind_robot(self, robot=None) -> None:
        """Backend.bind_robot, then check the model's action and state widths against the action space."""
        super().bind_robot(robot)
        dims = (self.output.action_dim, self.output.state_dim)
        if dims != (self.cfg.action_dim, self.cfg.state_dim):
            raise BackendError(
                f"octo checkpoint: action space '{self.output.space.name}' on this robot has {dims[0]} action / "
                f"{dims[1]} state values, the model {self.cfg.action_dim} / {self.cfg.state_dim}"
            )

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = self._state(observation)
        dev = self.device
        slots = self.mapping.slot_cameras
        if self.output is None:
            raise BackendError(f"octo backend: action space {self.action_space} needs the robot: call bind_robot first")
        images = {
            s: torch.from_numpy(self.processor.image_input(observation.images[slots[s]]))[None].to(dev)
            for s in self.cfg.camera_names
        }
        state = torch.from_numpy(self.processor.state_input(self.output.state_vector(q)))[None].to(dev)
        ids, valid = (torch.from_numpy(v)[None].to(dev) for v in self.tokenizer(observation.instruction))
        noises = self._noises([noise])
        guide = None if prefix is None else self._guidance_target(prefix, q, observation.stamp_s)
        # guidance differentiates through the head: no_grad (not inference_mode) keeps that possible
        with torch.inference_mode() if guide is None else torch.no_grad():
            emb = self.net.embed_step(images, state, ids, valid)
            out = self.net.head.sample(emb, noises, guide=guide)[0].cpu().numpy()
        actions = self.processor.model_to_actions(out)
        return self.output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start)

    def _state(self, observation: Observation) -> np.ndarray:
        """(D,) joint positions in the model's order; BackendError if a joint or a camera is missing."""
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, "octo backend")
        missing = [c for c in self.camera_names if c not in observation.images]
        if missing:
            raise BackendError(f"octo backend needs cameras {list(self.camera_names)}; observation lacks {missing}")
        return q

    def predict_batch(
        self, observations: list[Observation], noises: list[np.ndarray | None] | None = None
    ) -> list[ActionChunk]:
        """One forward pass for several observations (several robots on one server); chunk i is for
        observations[i]. noises[i]: (H, action_dim) or None. No plan prefix (guidance is per robot)."""
        start = time.perf_counter()
        qs = [self._state(o) for o in observations]
        dev, slots = self.device, self.mapping.slot_cameras
        images = {
            s: torch.from_numpy(np.stack([self.processor.image_input(o.images[slots[s]]) for o in observations])).to(
                dev
            )
            for s in self.cfg.camera_names
        }
        if self.output is None:
            raise BackendError(f"octo backend: action space {self.action_space} needs the robot: call bind_robot first")
        state = torch.from_numpy(np.stack([self.processor.state_input(self.output.state_vector(q)) for q in qs])).to(
            dev
        )
        tokens = [self.tokenizer(o.instruction) for o in observations]
        ids = torch.from_numpy(np.stack([t[0] for t in tokens])).to(dev)
        valid = torch.from_numpy(np.stack([t[1] for t in tokens])).to(dev)
        with torch.inference_mode():
            emb = self.net.embed_step(images, state, ids, valid)
            out = self.net.head.sample(emb, self._noises(noises or [None] * len(observations))).cpu().numpy()
        elapsed = time.perf_counter() - start
        return [
            self.output.to_chunk(self.processor.model_to_actions(out[i]), q, o.stamp_s, self.dt_s, None, elapsed)
            for i, (o, q) in enumerate(zip(observations, qs))
        ]

    def _noises(self, given: list[np.ndarray | None]) -> torch.Tensor:
        """The sampler's noise sequence (K + 1, B, H*A): per robot its initial sample (H, A) if given, the rest
        drawn from the backend's generator."""
        flat = self.horizon * self.cfg.action_dim
        noises = torch.randn(
            (self.cfg.diffusion_steps + 1, len(given), flat), generator=self.generator, device=self.device
        )
        for i, z in enumerate(given):
            if z is not None:
                noises[0, i] = torch.as_tensor(np.asarray(z, np.float32), device=self.device).reshape(flat)
        return noises

    def _guidance_target(
        self, prefix: PlanPrefix, q: np.ndarray, t0_s: float
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """RTC target (1, H, D) in model units, weights (H,) and the guidance clip, from the executor's plan ahead."""
        try:
            prefix = prefix.in_joint_order(self.joint_names)
        except JointNameError as exc:
            raise BackendError(str(exc)) from exc
        targets, weights = prefix_on_grid(prefix, t0_s + self.dt_s * np.arange(1, self.horizon + 1))
        actions = self.output.to_model_actions(targets, q, self.output.start_q(q, t0_s, prefix))
        model_targets = self.processor.actions_to_model(actions)
        return (
            torch.from_numpy(model_targets)[None].to(self.device),
            torch.from_numpy(weights).float().to(self.device),
            self.max_guidance,
        )


def load_octo_backend(model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0) -> OctoBackend:
    """The backend for checkpoint folder `model_path`, settings layered over `overrides` (node parameters)."""
    if model_path is None:
        raise BackendError("octo backend: no checkpoint folder given (model_path)")
    settings, sources = resolve_settings(OctoSettings, settings_layers("octo", Path(model_path), overrides or {}))
    if is_release_folder(Path(model_path)):
        backend = load_release_backend(Path(model_path), settings, seed)
        backend.settings_sources = sources
        return backend
    cfg, stats = load_config(Path(model_path))
    backend = OctoBackend(load_model(Path(model_path), cfg, settings.device), cfg, stats, settings, seed)
    backend.settings_sources = sources
    return backend
