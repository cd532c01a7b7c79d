"""The Octo backend: one class for every Octo checkpoint over the one implementation (OctoNet, modeling.py).

The checkpoint's kind (demo-style `config.json` or a released model converted by `vla-ros convert octo`)
only decides how the config, statistics and task encoder are read (checkpoint.py: `OctoCheckpoint`); the
net's options decide which inputs it takes. Per `predict`: the mapped cameras' frames (and the normalised
state, for a model with a proprio token) join the history window (padding at an episode's start, a camera
the observation lacks is masked where the model allows it); the task is the instruction (word ids or T5
states, encoded once per change), a goal image (a file or an observation image named in the settings),
both or neither; the readout of the window's last step conditions the diffusion head, optionally guided
toward the executor's running plan (Real-Time Chunking); the unnormalised chunk goes through the shared
action-space step (backends/action_output.py) to joint targets.

Settings layers: backends/settings.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError, backend_joints, require_cameras
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.backends.octo.checkpoint import OctoCheckpoint, load_checkpoint
from vla_ros.backends.octo.configuration import OctoSettings
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.backends.octo.processing import (
    History,
    check_normalization,
    collate,
    image_input,
    normalize_actions,
    task_input,
    unnormalize_actions,
)
from vla_ros.backends.settings import resolve_settings, settings_layers
from vla_ros.core.robot_mapping import JointNameError, RobotMapping
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

STATE = "state"  # the window's entry for the normalised proprio state


class OctoBackend(Backend):
    """An Octo checkpoint as a Backend: `predict` (with RTC guidance), `predict_batch`, `predict_actions`."""

    supports_prefix = True

    def __init__(
        self,
        net: OctoNet,
        checkpoint: OctoCheckpoint,
        settings: OctoSettings = OctoSettings(),
        seed: int = 0,
        robot=None,
    ):
        """net: the model (eval, on its device); checkpoint: what its kind decided (checkpoint.py); settings: how
        the robot runs it; seed: the sampler's noise generator; robot: the RobotBody whose joints and cameras
        fill what the checkpoint and settings leave open. BackendError for settings that do not fit."""
        self.robot = robot
        self.net, self.checkpoint, self.settings, self.cfg = net, checkpoint, settings, checkpoint.config
        self.text_encoder = checkpoint.text_encoder
        self.action_stats, self.dataset_key = checkpoint.action_stats, checkpoint.dataset_key
        self.action_dim = len(self.action_stats["mean"])  # model action values the dataset has (<= the net's)
        self.normalization = settings.normalization
        self.action_space, self.action_space_source = self._action_space(settings, checkpoint)
        self.slots = {g.name: g.image_size for g in net.cfg.images}  # model image slot -> (h, w) pixels
        self.mapping: RobotMapping = self._mapping()
        self._check_model_fits()
        self.camera_names = self.mapping.robot_cameras
        self.joint_names = self.mapping.joints
        self.relative_joints = self.mapping.relative_joints
        self.dt_s = settings.dt_s or checkpoint.dt_s
        self.horizon = net.cfg.action_horizon
        self.max_guidance = settings.max_guidance
        self.guidance_overlap = settings.guidance_overlap
        self.window = History(settings.window_size or net.cfg.window_size)
        self.device = next(net.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.goal_file = self._goal_from_file(settings.goal_image) if settings.goal_image else None
        if self.action_space is None:  # joint positions need no robot; other spaces wait for bind_robot
            self.bind_robot(None)

    @staticmethod
    def _action_space(settings: OctoSettings, checkpoint: OctoCheckpoint) -> tuple[dict | None, str]:
        """(block, source): the settings' statement of the checkpoint's convention over the checkpoint's default, or
        its fields over what the checkpoint's config.json states; BackendError naming both on a contradiction."""
        if settings.action_space is None:
            return checkpoint.action_space, checkpoint.action_space_source
        stated = checkpoint.action_space if checkpoint.action_space_source.endswith("config.json") else None
        meaning = ("preset", "groups", "chain")
        if stated and any(k in settings.action_space and settings.action_space[k] != stated.get(k) for k in meaning):
            raise BackendError(
                f"{settings.source}: action_space {settings.action_space} contradicts {stated} stated by "
                f"{checkpoint.action_space_source}: remove one"
            )
        if stated:  # the same meaning: the settings' fields over the checkpoint's block
            return {**stated, **settings.action_space}, f"{checkpoint.action_space_source} < {settings.source}"
        return settings.action_space, settings.source

    def _mapping(self) -> RobotMapping:
        """The settings' robot mapping over the checkpoint's; a joint-position model checks its joints."""
        ckpt = self.checkpoint
        try:
            check_normalization(self.action_stats, self.normalization)
            joint_dim = None if self.action_space else self.net.cfg.action_dim
            robot_joints, robot_cameras = (self.robot.joint_names, self.robot.camera_names) if self.robot else ((), ())
            return self.settings.mapping(
                ckpt.joints, tuple(self.slots), ckpt.delta_mask, joint_dim, robot_joints, robot_cameras
            )
        except ValueError as exc:
            raise BackendError(f"{ckpt.where}: {exc}") from exc

    def _check_model_fits(self) -> None:
        """BackendError unless the statistics, the state statistics and the goal settings fit the net."""
        cfg, where, settings = self.net.cfg, self.checkpoint.where, self.settings
        if self.action_dim > cfg.action_dim:
            raise BackendError(
                f"{where}: {self.dataset_key or 'the statistics'} have {self.action_dim} action dims, "
                f"the model {cfg.action_dim}"
            )
        state_stats = self.checkpoint.state_stats
        if cfg.proprio_dim and (state_stats is None or len(state_stats.mean) != cfg.proprio_dim):
            raise BackendError(f"{where}: the model's proprio token needs {cfg.proprio_dim} state statistics")
        if (settings.goal_image or settings.goal_camera) and not any(g.goal for g in cfg.images):
            raise BackendError(f"{settings.source}: goal_image / goal_camera: the model takes no goal image")
        if settings.goal_camera is not None and settings.goal_camera in self.mapping.robot_cameras:
            raise BackendError(f"{settings.source}: goal_camera {settings.goal_camera!r} is also an observation camera")

    def bind_robot(self, robot=None) -> None:
        """Backend.bind_robot, then check the action space's action and state widths against the model's."""
        super().bind_robot(robot)
        proprio = self.net.cfg.proprio_dim
        if self.output.action_dim != self.action_dim or (proprio and self.output.state_dim != proprio):
            raise BackendError(
                f"octo ({self.action_space_source}): action space '{self.output.space.name}' on this robot has "
                f"{self.output.action_dim} action / {self.output.state_dim} state values, the model "
                f"{self.action_dim} (statistics {self.dataset_key or 'dataset_statistics.json'}) / {proprio or 'any'}"
            )

    def reset(self) -> None:
        self.window.reset()

    def new_episode_state(self, seed: int) -> dict[str, Any]:
        """An empty history window and a noise generator seeded with `seed` (what loading leaves)."""
        return {"window": History(self.window.size), "generator": torch.Generator(device=self.device).manual_seed(seed)}

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        """(K + 1, H, A'): the sampler's whole noise sequence (K denoising steps; A' the net's action width);
        `predict` takes it, or its first (H, A') sample alone with the rest drawn from the generator."""
        cfg = self.net.cfg
        return (cfg.diffusion_steps + 1, cfg.action_horizon, cfg.action_dim)

    def diagnostics(self) -> dict[str, str]:
        return {
            "octo_checkpoint": self.checkpoint.kind,
            "octo_history": f"{len(self.window.frames)}/{self.window.size}",
            **({"octo_dataset": self.dataset_key} if self.dataset_key else {}),
        }

    # --- prediction

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = self._joints(observation)
        output = self._output()
        guide = None if prefix is None else self._guidance_target(prefix, q, observation.stamp_s)
        actions = self._sample([self._step(observation, q, self.window)], [noise], guide)[0]
        return output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start)

    def predict_batch(
        self,
        observations: list[Observation],
        noises: list[np.ndarray | None] | None = None,
        states: list[dict[str, Any]] | None = None,
    ) -> list[ActionChunk]:
        """One forward pass for several observations (several robots on one server); chunk i is for
        observations[i]. noises[i]: as `predict`'s or None. states[i]: robot i's episode state
        (`new_episode_state`): its history window takes the observation and its generator draws the noise, so
        chunk i equals what `predict` gives within that state; without states each observation is an episode's
        first step with noise from the backend's generator. No plan prefix (guidance is per robot)."""
        start = time.perf_counter()
        qs = [self._joints(o) for o in observations]
        output = self._output()
        windows = [s["window"] for s in states] if states else [History(self.window.size) for _ in observations]
        steps = [self._step(o, q, w) for o, q, w in zip(observations, qs, windows)]
        generators = [s["generator"] for s in states] if states else None
        actions = self._sample(steps, noises or [None] * len(observations), generators=generators)
        elapsed = time.perf_counter() - start
        return [
            output.to_chunk(actions[i], q, o.stamp_s, self.dt_s, None, elapsed)
            for i, (o, q) in enumerate(zip(observations, qs))
        ]

    def predict_actions(self, observation: Observation, noise: np.ndarray | None = None) -> np.ndarray:
        """Model actions (H, A) in the dataset's units for the window ending at `observation` (no joint targets)."""
        q = self._joints(observation) if self.net.cfg.proprio_dim else None
        return self._sample([self._step(observation, q, self.window)], [noise])[0]

    def inputs(self, observation: Observation) -> dict:
        """OctoNet.forward's arguments (batch 1) for the window ending at `observation` (pushed into the history)."""
        q = self._joints(observation) if self.net.cfg.proprio_dim else None
        return collate([self._step(observation, q, self.window)], self.device)

    def _sample(
        self,
        steps: list[dict],
        noises: list[np.ndarray | None],
        guide: tuple | None = None,
        generators: list[torch.Generator] | None = None,
    ) -> np.ndarray:
        """Model actions (B, H, A) in the dataset's units for per-observation inputs `steps` (see `_step`);
        generators: one per observation (default: the backend's for all)."""
        inputs = collate(steps, self.device)
        sequence = self._noises(noises, generators)
        # guidance differentiates through the head: no_grad (not inference_mode) keeps that possible
        with torch.inference_mode() if guide is None else torch.no_grad():
            readouts = self.net(**inputs)[:, -1]
            chunks = self.net.head.sample(self.net.embedding(readouts), sequence, self.action_dim, guide)
        return unnormalize_actions(chunks.cpu().numpy(), self.action_stats, self.normalization)

    def _noises(self, given: list[np.ndarray | None], generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """The sampler's noise sequence (K + 1, B, H*A') for B observations: for each, its initial sample
        (H, A') or its whole sequence (K + 1, H*A') if given, the rest drawn from the backend's generator or
        observation i's own `generators[i]` (A': the net's action width)."""
        cfg = self.net.cfg
        flat = cfg.action_horizon * cfg.action_dim
        shape = (cfg.diffusion_steps + 1, len(given), flat)
        if generators is None:
            noises = torch.randn(shape, generator=self.generator, device=self.device)
        else:  # each draws what `predict` would draw from it: (K + 1, 1, H*A')
            draws = [torch.randn((shape[0], 1, flat), generator=g, device=self.device) for g in generators]
            noises = torch.cat(draws, dim=1)
        for i, z in enumerate(given):
            if z is None:
                continue
            z = torch.as_tensor(np.asarray(z, np.float32), device=self.device)
            if z.numel() == flat:
                noises[0, i] = z.reshape(flat)
            elif z.numel() == noises[:, i].numel():
                noises[:, i] = z.reshape(cfg.diffusion_steps + 1, flat)
            else:
                raise BackendError(
                    f"octo backend: noise of shape {tuple(z.shape)}; expected ({self.horizon}, {cfg.action_dim}) or "
                    f"({cfg.diffusion_steps + 1}, {flat})"
                )
        return noises

    def _guidance_target(
        self, prefix: PlanPrefix, q: np.ndarray, t0_s: float
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """RTC target (1, H, A') in model units, weights (H,) and the guidance clip, from the executor's plan ahead
        (dims the dataset lacks: 0, left to the sampler)."""
        try:
            prefix = prefix.in_joint_order(self.joint_names)
        except JointNameError as exc:
            raise BackendError(str(exc)) from exc
        targets, weights = prefix_on_grid(
            prefix, t0_s + self.dt_s * np.arange(1, self.horizon + 1), self.guidance_overlap
        )
        actions = self.output.to_model_actions(targets, q, self.output.start_q(q, t0_s, prefix))
        model_targets = normalize_actions(actions, self.action_stats, self.normalization)
        model_targets = np.pad(model_targets, ((0, 0), (0, self.net.cfg.action_dim - self.action_dim)))
        return (
            torch.from_numpy(model_targets)[None].to(self.device),
            torch.from_numpy(weights).float().to(self.device),
            self.max_guidance,
        )

    # --- inputs

    def _joints(self, observation: Observation) -> np.ndarray:
        """(D,) joint positions in the model's order; BackendError if a joint is missing."""
        return backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, "octo backend")

    def _output(self):
        if self.output is None:
            raise BackendError(f"octo backend: action space {self.action_space} needs the robot: call bind_robot first")
        return self.output

    def _step(self, observation: Observation, q: np.ndarray | None, history: History) -> dict:
        """One observation's model inputs (NumPy, no batch axis; see `collate`), its step pushed into `history`."""
        if self.checkpoint.all_cameras:
            require_cameras(observation, self.camera_names, "octo backend")
        elif not any(c in observation.images for c in self.camera_names):
            cameras = list(self.camera_names)
            raise BackendError(f"octo backend needs one of the cameras {cameras}; the observation has none")
        step: dict[str, np.ndarray | None] = {slot: None for slot in self.slots}
        for slot, camera in self.mapping.cameras.items():
            if camera in observation.images:
                rgb, where = observation.images[camera], f"octo: camera {camera!r}"
                step[slot] = image_input(rgb, self.slots[slot], where, self.settings.resize_images)
        blanks = {slot: np.full((3, *size), -1.0, np.float32) for slot, size in self.slots.items()}
        proprio = self.net.cfg.proprio_dim
        if proprio:
            step[STATE] = self.checkpoint.state_stats.normalize(self._output().state_vector(q)).astype(np.float32)
            blanks[STATE] = np.zeros(proprio, np.float32)
        history.push(step)
        stacked, present, steps = history.window(blanks)
        out = {
            "images": {s: stacked[s] for s in self.slots},
            "image_valid": {s: present[s] for s in self.slots},
            "timestep_valid": steps,
            "goals": self._goals_for(observation),
        }
        if proprio:
            out["proprio"] = stacked[STATE]
        if self.net.cfg.language:
            shape = (self.net.cfg.language_tokens, self.net.cfg.language_dim)
            out.update(task_input(observation.instruction, self.text_encoder, shape, self.settings.source))
        return out

    def _goals_for(self, observation: Observation) -> dict[str, np.ndarray]:
        """The goal image per goal slot: the goal camera's frame when present, else the goal file's, else none."""
        camera = self.settings.goal_camera
        if camera is not None and camera in observation.images:
            return self._goals(observation.images[camera], f"goal camera {camera!r}")
        return self.goal_file or {}

    def _goal_from_file(self, path: str) -> dict[str, np.ndarray]:
        import cv2

        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise BackendError(f"{self.settings.source}: goal_image {path}: not a readable image file")
        return self._goals(bgr[..., ::-1].copy(), f"goal_image {path}")

    def _goals(self, rgb: np.ndarray, where: str) -> dict[str, np.ndarray]:
        """The goal image for every slot that stacks one: slot -> (3, h, w) in [-1, 1]."""
        return {
            g.name: image_input(rgb, g.image_size, where, self.settings.resize_images)
            for g in self.net.cfg.images
            if g.goal
        }


def load_octo_backend(
    model_path: Path | None, overrides: dict[str, Any] | None = None, seed: int = 0, robot=None
) -> OctoBackend:
    """The backend for checkpoint folder `model_path` (either kind), settings layered over `overrides` (node
    parameters). robot: the RobotBody whose joints a checkpoint that names none drives."""
    if model_path is None:
        raise BackendError("octo backend: no checkpoint folder given (model_path)")
    settings, sources = resolve_settings(OctoSettings, settings_layers("octo", Path(model_path), overrides or {}))
    net, checkpoint = load_checkpoint(Path(model_path), settings)
    backend = OctoBackend(net, checkpoint, settings, seed, robot)
    backend.settings_sources = sources
    return backend
