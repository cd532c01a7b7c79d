"""What π₀-family backends (π₀, π₀.5, SmolVLA) share around their flow-matching sampler: the start noise
and the guidance target of Real-Time Chunking, from the backend's shapes and its action output."""

from __future__ import annotations

import numpy as np
import torch

from vla_ros.backends.base import BackendError, backend_joints
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.core.types import PlanPrefix


class FlowSampling:
    """Mixin for a Backend with `noise_shape` (1, H, A), `generator`, `device`, `dt_s`, `horizon`, `joint_names`,
    `output`, `processor` (`actions_to_model`), `settings.guidance_overlap`; `who` and `noise_axes` name it in
    errors."""

    who = "flow-matching backend"
    noise_axes = "(horizon, padded action dim)"

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

    def _guidance_target(self, prefix: PlanPrefix, q: np.ndarray, t0_s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The plan on this chunk's point times, in model units (1, H, A), and RTC weights (H,)."""
        grid = t0_s + self.dt_s * np.arange(1, self.horizon + 1)
        targets, weights = prefix_on_grid(prefix, grid, self.settings.guidance_overlap)
        targets = backend_joints(prefix.joint_names, targets, self.joint_names, self.who, "plan prefix")
        actions = self.output.to_model_actions(targets, q, self.output.start_q(q, t0_s, prefix))
        model_units = self.processor.actions_to_model(actions)
        return (torch.from_numpy(model_units)[None].to(self.device), torch.from_numpy(weights).float().to(self.device))
