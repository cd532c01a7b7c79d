"""The SmolVLA backend: a LeRobot SmolVLA folder + settings -> model, and `predict` (with RTC guidance).

Settings: the package's `config/backends/smolvla.yaml` < `<checkpoint>/smolvla.yaml` < node parameters
(backends/settings.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError, backend_joints, checkpoint_folder, require_cameras
from vla_ros.backends.blocks.flow import euler_integrate, rtc_guided
from vla_ros.backends.blocks.flow_sampling import FlowSampling
from vla_ros.backends.pi0.origin import relative_joints
from vla_ros.backends.settings import default_cameras, resolve_settings, settings_layers, with_robot_joints
from vla_ros.backends.smolvla.checkpoint import WEIGHTS, build_model, load_checkpoint, load_weights
from vla_ros.backends.smolvla.modeling import PrefixCache, SmolVLAModel
from vla_ros.backends.smolvla.processing import SmolVLAProcessor, SmolVLATokenizer
from vla_ros.backends.smolvla.settings import SmolVLASettings
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
LOG = logging.getLogger(__name__)
WHO = "SmolVLA backend"


class SmolVLABackend(FlowSampling, Backend):
    supports_prefix = True
    who = WHO
    noise_axes = "(chunk_size, max_action_dim)"

    def __init__(self, model: SmolVLAModel, processor: SmolVLAProcessor, tokenizer: SmolVLATokenizer, seed: int = 0):
        self.model = model
        self.cfg = model.cfg
        self.processor = processor
        self.settings = processor.settings
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.camera_names = tuple(dict.fromkeys(robot for _, robot in processor.camera_map))
        self.joint_names = self.settings.joints
        self.dt_s = self.settings.dt_s
        self.horizon = self.cfg.chunk_size
        self.steps = self.settings.steps
        self.max_guidance = self.settings.max_guidance
        self.relative_joints = self.settings.relative_joints
        self.action_space = self.settings.action_space
        self.action_space_source = self.settings.source
        if self.action_space is None:  # joint positions need no robot; other spaces wait for bind_robot
            self.bind_robot(None)

    def bind_robot(self, robot=None) -> None:
        """Backend.bind_robot, then check the action and state widths are the checkpoint's."""
        super().bind_robot(robot)
        try:
            out = self.output
            self.processor.check_dims(out.action_dim, out.state_dim, f"action space '{out.space.name}'")
        except ValueError as exc:
            raise BackendError(f"{WHO} ({self.settings.source}): {exc}") from exc

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        return (1, self.horizon, self.cfg.max_action_dim)

    def new_episode_state(self, seed: int) -> dict[str, Any]:
        """The noise generator seeded with `seed` (the only state kept between predictions)."""
        return {"generator": torch.Generator(device=self.device).manual_seed(seed)}

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, WHO)
        require_cameras(observation, self.camera_names, WHO)
        with torch.no_grad():
            cache = self.encode(observation, q)
            field = self.model.denoiser(cache)
            if prefix is not None:  # RTC guidance differentiates through each step
                target, weights = self._guidance_target(prefix, q, observation.stamp_s)
                field = rtc_guided(field, target, weights, self.max_guidance)
            out = euler_integrate(field, self._initial_noise(noise), self.steps)
        actions = self.processor.model_to_actions(out[0].float().cpu().numpy(), self.output.action_dim)
        return self.output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start)

    def encode(self, observation: Observation, q: np.ndarray) -> PrefixCache:
        """The prefix cache of one observation (images, prompt, state token) for joints q (joint_names order)."""
        if self.output is None:
            raise BackendError(f"{WHO}: action space {self.action_space} needs the robot: call bind_robot first")
        dev = self.device
        pixels = self.processor.images(observation.images, dev)
        ids, valid = self.tokenizer(observation.instruction)
        state = self.processor.state_input(self.output.state_vector(q))
        prefix, prefix_valid, starts = self.model.embed_prefix(
            pixels[None],
            torch.from_numpy(ids)[None].to(dev),
            torch.from_numpy(valid)[None].to(dev),
            torch.from_numpy(state)[None].to(dev),
        )
        return self.model.prefill(prefix, prefix_valid, starts)


def load_smolvla_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> SmolVLABackend:
    """SmolVLA backend from a LeRobot folder (`model_path`, else the settings' `checkpoint`), settings layered
    over `overrides` (node parameters; see backends/settings.py). robot: the RobotBody whose joints and
    cameras are used where the settings name none."""
    settings, sources = resolve_settings(SmolVLASettings, settings_layers("smolvla", model_path, overrides or {}))
    folder = checkpoint_folder(model_path, settings, WHO)
    ckpt = load_checkpoint(folder, settings)
    settings, sources = with_robot_joints(ckpt.settings, sources, robot, WHO)
    if settings.cameras is None:
        cameras = default_cameras(ckpt.cfg.real_cameras, robot.camera_names if robot else ())
        if not cameras:
            raise BackendError(f"{WHO} ({settings.source}): cameras: none mapped and no robot cameras to map")
        settings = dataclasses.replace(settings, cameras=cameras)
        sources = {**sources, "cameras": f"default: the robot's cameras onto {list(ckpt.cfg.real_cameras)}"}
    named = sources.get("relative_joints", "default")  # the checkpoint's relative dims win over the default only
    try:
        relative, relative_source = relative_joints(
            ckpt.profile, settings.joints, settings.relative_joints, None if named == "default" else named
        )
    except ValueError as exc:
        raise BackendError(f"{WHO} ({folder}): {exc}") from exc
    settings = dataclasses.replace(settings, relative_joints=relative)
    sources = {**sources, "relative_joints": relative_source, "steps": ckpt.profile.sources["steps"]}
    profile = ckpt.profile
    try:
        processor = SmolVLAProcessor(
            ckpt.cfg, settings, ckpt.stats, profile.state_norm, profile.action_norm, profile.eps
        )
    except ValueError as exc:
        raise BackendError(f"{WHO} ({folder}, {settings.source}): {exc}") from exc
    model = build_model(ckpt.cfg, settings.device, DTYPES[settings.dtype])
    load_weights(folder / WEIGHTS, model)
    backend = SmolVLABackend(model, processor, ckpt.tokenizer, seed)
    backend.settings_sources = sources
    backend.provenance = ckpt.provenance
    return backend
