"""The π₀ backend: checkpoint folder + settings -> model, and `predict` (with RTC guidance).

Settings: the package's `config/backends/pi0.yaml` < `<checkpoint>/pi0.yaml` < node parameters
(backends/settings.py). With `openpi_config` (openpi_configs.py) the config's action space, relative dims,
dt_s and camera slots are the checkpoint's conventions: they replace defaults (the package file's
included), and a setting that states something else fails naming both.
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
from vla_ros.backends.pi0.checkpoint import build_model, load_checkpoint, load_weights
from vla_ros.backends.pi0.fast import DeviceImages, FastSampler
from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.openpi_configs import OpenpiConfig, lookup, merged_action_space, same_dt
from vla_ros.backends.pi0.origin import relative_joints
from vla_ros.backends.pi0.processing import Pi0Processor
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tokenizer import PaligemmaTokenizer
from vla_ros.backends.settings import default_cameras, resolve_settings, settings_layers, with_robot_joints
from vla_ros.core.types import Observation, PlanPrefix
from vla_ros.paths import default_config_dir

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
LOG = logging.getLogger(__name__)


class Pi0Backend(FlowSampling, Backend):
    supports_prefix = True
    who = "π₀ backend"

    def __init__(
        self,
        model: Pi0Model,
        processor: Pi0Processor,
        tokenizer: PaligemmaTokenizer,
        seed: int = 0,
        action_space_source: str | None = None,
        openpi_config: OpenpiConfig | None = None,
    ):
        self.openpi_config = openpi_config  # its action/state widths are checked against the robot's
        cameras = tuple(dict.fromkeys(processor.settings.cameras.values()))
        chunk_shape = (model.cfg.action_horizon, model.cfg.action_dim)
        self.tokenizer = tokenizer
        super().__init__(model, processor, seed, cameras, chunk_shape, action_space_source)
        self.sampler = FastSampler(model, self.steps, self.settings.fast_path)  # unguided chunks
        self.device_images = DeviceImages(processor, self.device)

    def bind_robot(self, robot=None) -> None:
        """FlowSampling.bind_robot, then check the action and state widths are the openpi config's."""
        super().bind_robot(robot)
        out, openpi = self.output, self.openpi_config
        if openpi is not None and (out.action_dim, out.state_dim) != (openpi.action_dims, openpi.state_dims):
            raise BackendError(
                f"π₀ backend ({self.settings.source}): action space '{out.space.name}' over the joints "
                f"{list(out.joint_names)} has {out.action_dim} action / {out.state_dim} state values; "
                f"{openpi.source('action_space')} has {openpi.action_dims} / {openpi.state_dims} "
                f"(state: {openpi.state})"
            )

    def _sample(
        self, observation: Observation, q: np.ndarray, noise: np.ndarray | None, prefix: PlanPrefix | None
    ) -> torch.Tensor:
        cache, state = self._encode(observation, q)
        if prefix is None:
            return self.sampler(cache, state, self._initial_noise(noise))
        # RTC guidance differentiates through each step: the eager loop
        field = self._guided(self.model.denoiser(cache, state), prefix, q, observation.stamp_s)
        return euler_integrate(field, self._initial_noise(noise), self.steps)

    def _encode(self, observation: Observation, q: np.ndarray):
        """Prefix KV cache and the state tensor (1, state_dim) of one observation (None for π₀.5,
        whose state is written into the prompt)."""
        dev = self.device
        if self.output is None:
            raise BackendError(f"π₀ backend: action space {self.action_space} needs the robot: call bind_robot first")
        state_vector = self.output.state_vector(q)
        pixels, valid = self.device_images(observation.images)  # on the device, scaled there from uint8
        if self.settings.skip_masked_slots:  # masked slots take no position and are never attended
            pixels, valid = pixels[torch.from_numpy(np.flatnonzero(valid)).to(dev)], valid[valid]
        ids, id_valid = self.tokenizer(observation.instruction, self.processor.prompt_state(state_vector))
        prefix, prefix_valid = self.model.embed_prefix(
            pixels[None],
            torch.from_numpy(valid)[None].to(dev),
            torch.from_numpy(ids)[None].to(dev),
            torch.from_numpy(id_valid)[None].to(dev),
        )
        state = self.processor.state_input(state_vector)
        state = None if state is None else torch.from_numpy(state)[None].to(dev)
        return self.model.prefill(prefix, prefix_valid), state


def load_pi0_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> Pi0Backend:
    """π₀ backend from a checkpoint folder (`model_path`, else the settings' `checkpoint`), settings
    layered over `overrides` (node parameters; see backends/settings.py). robot: the RobotBody whose joints
    and cameras are used where the settings name none."""
    settings, sources = resolve_settings(Pi0Settings, settings_layers("pi0", model_path, overrides or {}))
    folder = checkpoint_folder(model_path, settings, "π₀ backend")
    openpi = None if settings.openpi_config is None else lookup(settings.openpi_config)  # checked by the settings
    if openpi is not None and settings.origin not in (None, "openpi"):
        raise BackendError(f"{sources['origin']}: origin {settings.origin!r} contradicts {openpi.source()}: remove one")
    ckpt = load_checkpoint(folder, settings)  # an openpi config is checked against the checkpoint there
    settings, sources = with_robot_joints(ckpt.settings, sources, robot, "π₀ backend")
    action_space_source = None
    if openpi is not None:
        try:
            settings, sources, action_space_source = _openpi_settings(openpi, settings, sources)
        except ValueError as exc:
            raise BackendError(f"π₀ backend ({folder}): {exc}") from exc
    ckpt = dataclasses.replace(ckpt, settings=settings)
    if ckpt.settings.cameras is None:
        slots = ckpt.profile.image_slots if openpi is None else tuple(openpi.cameras)
        cameras = default_cameras(slots, robot.camera_names if robot else ())
        if not cameras:
            raise BackendError(f"π₀ backend ({settings.source}): cameras: none mapped and no robot cameras to map")
        ckpt = dataclasses.replace(ckpt, settings=dataclasses.replace(ckpt.settings, cameras=cameras))
        sources = {**sources, "cameras": f"default: the robot's cameras onto {list(slots)}"}
        if openpi is not None:
            sources["cameras"] += f" ({openpi.source('cameras')})"
    named = sources.get("relative_joints", "default")  # the checkpoint's relative dims win over the default only
    try:
        if openpi is not None:
            relative, relative_source = _openpi_relative(openpi, ckpt.settings, _stated(sources, "relative_joints"))
        else:
            relative, relative_source = relative_joints(
                ckpt.profile, ckpt.settings.joints, ckpt.settings.relative_joints, None if named == "default" else named
            )
    except ValueError as exc:
        raise BackendError(f"π₀ backend ({folder}): {exc}") from exc
    if relative and ckpt.profile.relative_actions is not None and ckpt.settings.action_space is not None:
        LOG.warning(
            "π₀ backend: the checkpoint predicts %s relative to the raw state (%s); the action_space setting (%s) "
            "decides instead: it must say so",
            list(relative),
            relative_source,
            ckpt.settings.source,
        )
    ckpt = dataclasses.replace(ckpt, settings=dataclasses.replace(ckpt.settings, relative_joints=relative))
    sources = {**sources, "relative_joints": relative_source}
    try:
        processor = Pi0Processor(ckpt.cfg, ckpt.settings, ckpt.stats, ckpt.profile)
    except ValueError as exc:
        raise BackendError(f"π₀ backend ({folder}, {settings.source}): {exc}") from exc
    model = build_model(ckpt.cfg, settings.device, DTYPES[settings.dtype])
    load_weights(folder / "model.safetensors", model)
    backend = Pi0Backend(model, processor, ckpt.tokenizer, seed, action_space_source, openpi)
    backend.settings_sources = sources
    backend.provenance = ckpt.provenance
    return backend


def _stated(sources: dict[str, str], key: str) -> str | None:
    """Where a user stated setting `key` (a checkpoint's pi0.yaml, node parameters); None for the class default
    and the package's config/backends/pi0.yaml (defaults too)."""
    source = sources.get(key, "default")
    if source == "default" or source == str(default_config_dir() / "backends" / "pi0.yaml"):
        return None
    return source


def _openpi_settings(openpi: OpenpiConfig, settings: Pi0Settings, sources: dict[str, str]):
    """(settings, sources, action_space source) with the openpi config's dt_s, action space and camera slots;
    ValueError naming both sources where a stated setting contradicts them."""
    dt_source = _stated(sources, "dt_s")
    if dt_source is not None and not same_dt(settings.dt_s, openpi.dt_s):
        raise ValueError(
            f"{dt_source}: dt_s {settings.dt_s} contradicts {openpi.source('dt_s')}: {openpi.dt_s:.4g} s; "
            "remove dt_s or openpi_config"
        )
    space_source = _stated(sources, "action_space")
    space, action_space_source = merged_action_space(
        openpi, settings.action_space if space_source else None, space_source or ""
    )
    if settings.cameras is not None:
        stray = sorted(set(settings.cameras) - set(openpi.cameras))
        if stray:
            raise ValueError(
                f"{sources.get('cameras', settings.source)}: cameras map the π₀ slots {stray}, which "
                f"{openpi.source('cameras')} never fills (zeros, masked); its slots: {openpi.cameras}"
            )
    settings = dataclasses.replace(settings, dt_s=settings.dt_s if dt_source else openpi.dt_s, action_space=space)
    sources = {
        **sources,
        "dt_s": dt_source or openpi.source("dt_s"),
        "action_space": action_space_source,
    }
    return settings, sources, action_space_source


def _openpi_relative(openpi: OpenpiConfig, settings: Pi0Settings, stated: str | None) -> tuple[tuple[str, ...], str]:
    """(relative joints, source) of the openpi config's delta mask over the model joints; ValueError naming both
    when stated relative_joints differ."""
    own = openpi.relative_joints(settings.joints)
    source = openpi.source("delta_mask")
    if stated is not None and set(settings.relative_joints) != set(own):
        what = (
            f"states the relative values in its action space {openpi.action_space}"
            if openpi.action_space is not None
            else f"predicts {list(own) or 'no joint'} relative to the state ({openpi.relative_rule()} over the "
            f"joints {list(settings.joints)})"
        )
        raise ValueError(
            f"{stated}: relative_joints {list(settings.relative_joints)} contradict {source}, which {what}; "
            f"remove relative_joints or set them to {list(own)}"
        )
    return own, source
