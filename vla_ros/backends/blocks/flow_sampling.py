"""What π₀-family backends (π₀, π₀.5, SmolVLA) share around their flow-matching sampler: the attributes they
take from their model, processor and settings, the start noise, the guidance target of Real-Time Chunking,
and `predict` around the backend's own sampling of one chunk."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import BackendError, backend_joints, require_cameras
from vla_ros.backends.blocks.flow import Velocity, rtc_guided
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix


class FlowSampling:
    """Mixin (before Backend) for a Backend whose model (`cfg`, parameters on one device) samples chunks of
    `horizon` points of `action_width` values (padded), whose processor has `settings` (joints, dt_s, steps,
    max_guidance, guidance_overlap, relative_joints, action_space, source), `check_dims`, `actions_to_model` and
    `model_to_actions`, and which implements `_sample`; `who` and `noise_axes` name it in errors."""

    who = "flow-matching backend"
    noise_axes = "(horizon, padded action dim)"

    def __init__(
        self, model, processor, seed: int, cameras: tuple[str, ...], chunk_shape: tuple[int, int], source=None
    ):
        """chunk_shape: (horizon, padded action width) of the model's chunks; source: where the action space was
        read (default: the settings' source). Binds the robot at once when the action space is joint positions."""
        self.model = model
        self.cfg = model.cfg
        self.processor = processor
        self.settings = processor.settings
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.camera_names = cameras
        self.joint_names = self.settings.joints
        self.dt_s = self.settings.dt_s
        self.horizon, self.action_width = chunk_shape
        self.steps = self.settings.steps
        self.max_guidance = self.settings.max_guidance
        self.relative_joints = self.settings.relative_joints
        self.action_space = self.settings.action_space
        self.action_space_source = source or self.settings.source
        if self.action_space is None:  # joint positions need no robot; other spaces wait for bind_robot
            self.bind_robot(None)

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        return (1, self.horizon, self.action_width)

    def new_episode_state(self, seed: int) -> dict[str, Any]:
        """The noise generator seeded with `seed` (the only state kept between predictions)."""
        return {"generator": torch.Generator(device=self.device).manual_seed(seed)}

    def bind_robot(self, robot=None) -> None:
        """Backend.bind_robot, then check the action and state widths fit the model and its statistics."""
        super().bind_robot(robot)
        try:
            out = self.output
            self.processor.check_dims(out.action_dim, out.state_dim, f"action space '{out.space.name}'")
        except ValueError as exc:
            raise BackendError(f"{self.who} ({self.settings.source}): {exc}") from exc

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, self.who)
        require_cameras(observation, self.camera_names, self.who)
        with torch.no_grad():
            out = self._sample(observation, q, noise, prefix)
        actions = self.processor.model_to_actions(out[0].float().cpu().numpy(), self.output.action_dim)
        return self.output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start)

    def _sample(
        self, observation: Observation, q: np.ndarray, noise: np.ndarray | None, prefix: PlanPrefix | None
    ) -> torch.Tensor:
        """The model's chunk (1, H, A) for `observation` with joints q (`joint_names` order), from `noise` (None:
        drawn, see `_initial_noise`), guided towards `prefix` when given (see `_guided`)."""
        raise NotImplementedError

    def _initial_noise(self, noise: np.ndarray | None) -> torch.Tensor:
        """The sampler's start (1, H, A): `noise` as given, else drawn from the backend's generator."""
        if noise is None:
            return torch.randn(self.noise_shape, generator=self.generator, device=self.device)
        noise = np.asarray(noise, dtype=np.float32)
        if noise.size != np.prod(self.noise_shape):
            raise BackendError(
                f"{self.who}: noise must have shape {self.noise_shape[1:]} {self.noise_axes}, got {noise.shape}"
            )
        return torch.from_numpy(noise).reshape(self.noise_shape).to(self.device)

    def _guided(self, velocity: Velocity, prefix: PlanPrefix, q: np.ndarray, t0_s: float) -> Velocity:
        """`velocity` with RTC guidance towards the plan `prefix` (it differentiates through each step)."""
        target, weights = self._guidance_target(prefix, q, t0_s)
        return rtc_guided(velocity, target, weights, self.max_guidance)

    def _guidance_target(self, prefix: PlanPrefix, q: np.ndarray, t0_s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The plan on this chunk's point times, in model units (1, H, A), and RTC weights (H,)."""
        grid = t0_s + self.dt_s * np.arange(1, self.horizon + 1)
        targets, weights = prefix_on_grid(prefix, grid, self.settings.guidance_overlap)
        targets = backend_joints(prefix.joint_names, targets, self.joint_names, self.who, "plan prefix")
        actions = self.output.to_model_actions(targets, q, self.output.start_q(q, t0_s, prefix))
        model_units = self.processor.actions_to_model(actions)
        return (torch.from_numpy(model_units)[None].to(self.device), torch.from_numpy(weights).float().to(self.device))
