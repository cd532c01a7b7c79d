"""The backend for released Octo models converted by `vla-ros convert octo` (config.json format 'octo-release').

Per `predict`: the mapped cameras' frames join the history window (padding at an episode's start, a
camera the observation lacks is masked); the task is the instruction (T5, encoded once per change), a
goal image (a file or an observation image named in the settings), both or neither; the readout of the
window's last step conditions the diffusion head; the unnormalised chunk (e.g. Bridge EE deltas) goes
through the shared action-space step (backends/action_output.py) to joint targets.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from vla_ros.backends.base import Backend, BackendError, backend_joints
from vla_ros.backends.octo.configuration import OctoNetConfig, OctoSettings
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.backends.octo.processing_release import (
    History,
    T5TaskEncoder,
    image_input,
    select_dataset,
    unnormalize_actions,
)
from vla_ros.backends.weights import check_state_dict
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

DEFAULT_ACTION_SPACE = {"preset": "bridge_ee_delta"}  # the released models' Bridge convention


def load_net(folder: Path, cfg: OctoNetConfig, device: str = "cpu") -> OctoNet:
    """OctoNet (eval) with `folder`/model.safetensors; one BackendError listing every mismatch."""
    path = folder / "model.safetensors"
    if not path.is_file():
        raise BackendError(f"octo checkpoint {folder}: no model.safetensors (convert with `vla-ros convert octo`)")
    net = OctoNet(cfg)
    weights = load_file(str(path))
    check_state_dict(weights, net.state_dict(), f"octo checkpoint {path} (config.json)")
    net.load_state_dict(weights)
    return net.to(device).eval()


class OctoReleaseBackend(Backend):
    def __init__(
        self,
        net: OctoNet,
        statistics: dict,
        settings: OctoSettings,
        text_encoder: T5TaskEncoder | None = None,
        seed: int = 0,
        where: str = "octo checkpoint",
    ):
        cfg = self.cfg = net.cfg
        self.net, self.settings, self.text_encoder = net, settings, text_encoder
        self.dataset_key, self.action_stats = select_dataset(statistics, settings.dataset_key, where)
        self.action_dim = len(self.action_stats["mean"])
        if self.action_dim > cfg.action_dim:
            raise BackendError(
                f"{where}: {self.dataset_key} has {self.action_dim} action dims, the model {cfg.action_dim}"
            )
        slots = {g.name: g.image_size for g in cfg.images}
        self.cameras = dict(settings.cameras or {g: g for g in slots})
        unknown = sorted(set(self.cameras.values()) - set(slots))
        if unknown:
            raise BackendError(
                f"{settings.source}: cameras: model image slots {unknown} unknown; slots: {sorted(slots)}"
            )
        if settings.goal_camera is not None and settings.goal_camera in self.cameras:
            raise BackendError(f"{settings.source}: goal_camera {settings.goal_camera!r} is also an observation camera")
        if settings.joints is None:
            raise BackendError(f"{settings.source}: joints: name the robot joints the chunk drives (model order)")
        self.slots = slots
        self.camera_names = tuple(self.cameras)
        self.joint_names = tuple(settings.joints)
        self.relative_joints = tuple(settings.relative_joints or ())
        self.dt_s = settings.dt_s or 0.2
        self.horizon = cfg.action_horizon
        self.window = History(settings.window_size or cfg.window_size)
        self.goal_file = self._goal_from_file(settings.goal_image) if settings.goal_image else None
        self.device = next(net.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        if settings.action_space is not None:
            self.action_space, self.action_space_source = settings.action_space, settings.source
        elif cfg.action_space:
            self.action_space, self.action_space_source = cfg.action_space, f"{where}/config.json"
        else:
            self.action_space, self.action_space_source = DEFAULT_ACTION_SPACE, "octo release default (Bridge)"

    def bind_robot(self, robot=None) -> None:
        super().bind_robot(robot)
        if self.output.action_dim != self.action_dim:
            raise BackendError(
                f"octo ({self.action_space_source}): action space '{self.output.space.name}' takes "
                f"{self.output.action_dim} values per point, dataset {self.dataset_key!r} has {self.action_dim}"
            )

    def reset(self) -> None:
        self.window.reset()

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
            for g in self.cfg.images
            if g.goal
        }

    def inputs(self, observation: Observation) -> dict:
        """OctoNet.forward's arguments (batch 1) for the window ending at `observation`."""
        frame = {slot: None for slot in self.slots}
        for camera, slot in self.cameras.items():
            if camera in observation.images:
                frame[slot] = image_input(
                    observation.images[camera],
                    self.slots[slot],
                    f"octo: camera {camera!r}",
                    self.settings.resize_images,
                )
        if all(v is None for v in frame.values()):
            raise BackendError(f"octo backend needs one of the cameras {list(self.cameras)}; the observation has none")
        self.window.push(frame)
        images, valid, steps = self.window.window(self.slots)
        goals = self.goal_file
        if self.settings.goal_camera is not None and self.settings.goal_camera in observation.images:
            goals = self._goals(
                observation.images[self.settings.goal_camera], f"goal camera {self.settings.goal_camera!r}"
            )
        dev = self.device
        out = {
            "images": {s: torch.from_numpy(v)[None].to(dev) for s, v in images.items()},
            "image_valid": {s: torch.from_numpy(v)[None].to(dev) for s, v in valid.items()},
            "timestep_valid": torch.from_numpy(steps)[None].to(dev),
            "goals": {s: torch.from_numpy(v)[None].to(dev) for s, v in (goals or {}).items()},
        }
        if self.cfg.language:
            text = observation.instruction.strip()
            if text and self.text_encoder is None:
                raise BackendError(f"{self.settings.source}: t5_folder: a language task needs the T5 encoder folder")
            states = self.text_encoder(text) if text else np.zeros((self.cfg.language_tokens, self.cfg.language_dim))
            out["language"] = torch.from_numpy(np.asarray(states, np.float32))[None].to(dev)
            out["language_valid"] = torch.tensor([bool(text)], device=dev)
        return out

    def predict_actions(self, observation: Observation, noise: np.ndarray | None = None) -> np.ndarray:
        """Model actions (H, A) in the dataset's units. noise: the sampler's start (H, A_model) or the whole
        sequence (steps + 1, H * A_model); the rest is drawn from the backend's generator."""
        cfg = self.cfg
        flat = cfg.action_horizon * cfg.action_dim
        noises = torch.randn((cfg.diffusion_steps + 1, 1, flat), generator=self.generator, device=self.device)
        if noise is not None:
            given = torch.as_tensor(np.asarray(noise, np.float32), device=self.device)
            if given.numel() == flat:
                noises[0] = given.reshape(1, flat)
            else:
                noises = given.reshape(cfg.diffusion_steps + 1, 1, flat)
        with torch.inference_mode():
            readouts = self.net(**self.inputs(observation))[:, -1]
            chunk = self.net.head.sample(self.net.embedding(readouts), noises, self.action_dim)[0]
        return unnormalize_actions(chunk.cpu().numpy(), self.action_stats, self.settings.normalization)

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = backend_joints(observation.joint_names, observation.joint_positions, self.joint_names, "octo backend")
        if self.output is None:
            raise BackendError("octo backend: call bind_robot first (load_backend does)")
        actions = self.predict_actions(observation, noise)
        return self.output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start)


def load_release_backend(folder: Path, settings: OctoSettings, seed: int = 0) -> OctoReleaseBackend:
    """The backend for a converted released-Octo folder (config.json with format 'octo-release')."""
    import json

    try:
        cfg = OctoNetConfig.load(folder / "config.json")
        statistics = json.loads((folder / "dataset_statistics.json").read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise BackendError(f"octo checkpoint {folder}: {exc}") from exc
    net = load_net(folder, cfg, settings.device)
    encoder = None
    goal_only = settings.goal_image is not None or settings.goal_camera is not None
    if cfg.language and (settings.t5_folder is not None or not goal_only):
        encoder = T5TaskEncoder(settings.t5_folder, cfg.language_tokens, settings.device)
    return OctoReleaseBackend(net, statistics, settings, encoder, seed, f"octo checkpoint {folder}")
