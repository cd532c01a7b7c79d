"""The SmolVLA backend: a LeRobot SmolVLA folder + settings -> model, and `predict` (with RTC guidance).

Settings: the package's `config/backends/smolvla.yaml` < `<checkpoint>/smolvla.yaml` < node parameters
(backends/settings.py).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError, checkpoint_folder
from vla_ros.backends.blocks.flow import euler_integrate
from vla_ros.backends.blocks.flow_sampling import FlowSampling
from vla_ros.backends.pi0.origin import relative_joints
from vla_ros.backends.settings import default_cameras, resolve_settings, settings_layers, with_robot_joints
from vla_ros.backends.smolvla.checkpoint import WEIGHTS, build_model, load_checkpoint, load_weights
from vla_ros.backends.smolvla.modeling import PrefixCache, SmolVLAModel
from vla_ros.backends.smolvla.processing import SmolVLAProcessor, SmolVLATokenizer
from vla_ros.backends.smolvla.settings import SmolVLASettings
from vla_ros.core.types import Observation, PlanPrefix

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
LOG = logging.getLogger(__name__)
WHO = "SmolVLA backend"


class SmolVLABackend(FlowSampling, Backend):
    supports_prefix = True
    who = WHO
    noise_axes = "(chunk_size, max_action_dim)"

    def __init__(self, model: SmolVLAModel, processor: SmolVLAProcessor, tokenizer: SmolVLATokenizer, seed: int = 0):
        cameras = tuple(dict.fromkeys(robot for _, robot in processor.camera_map))
        chunk_shape = (model.cfg.chunk_size, model.cfg.max_action_dim)
        self.tokenizer = tokenizer
        super().__init__(model, processor, seed, cameras, chunk_shape)

    def _sample(
        self, observation: Observation, q: np.ndarray, noise: np.ndarray | None, prefix: PlanPrefix | None
    ) -> torch.Tensor:
        field = self.model.denoiser(self.encode(observation, q))
        if prefix is not None:
            field = self._guided(field, prefix, q, observation.stamp_s)
        return euler_integrate(field, self._initial_noise(noise), self.steps)

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
