"""The Octo-design backend: checkpoint folder <-> model, and `predict`.

Checkpoint folder: `config.json` (OctoConfig), `model.safetensors`, `dataset_statistics.json`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vla_ros.backends.base import Backend, BackendError
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.backends.normalization import DatasetStatistics
from vla_ros.backends.octo.configuration import OctoConfig
from vla_ros.backends.octo.modeling import OctoModel
from vla_ros.backends.octo.processing import OctoProcessor, image_input
from vla_ros.backends.octo.text import WordTokenizer
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

CHECKPOINT_FILES = ("config.json", "model.safetensors", "dataset_statistics.json")


def save_checkpoint(folder: Path, model: OctoModel, stats: DatasetStatistics) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.cfg.save(folder / "config.json")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    stats.save(folder / "dataset_statistics.json")


def load_checkpoint(folder: Path, device: str = "cpu") -> tuple[OctoModel, DatasetStatistics]:
    """Model (eval mode) and statistics; BackendError naming any missing file or key."""
    missing = [f for f in CHECKPOINT_FILES if not (folder / f).is_file()]
    if missing:
        raise BackendError(f"octo checkpoint {folder}: missing {missing} (a checkpoint folder holds {list(CHECKPOINT_FILES)})")
    try:
        cfg = OctoConfig.load(folder / "config.json")
        stats = DatasetStatistics.load(folder / "dataset_statistics.json")
    except (ValueError, TypeError) as exc:
        raise BackendError(f"octo checkpoint {folder}: {exc}") from exc
    model = OctoModel(cfg)
    weights = load_file(str(folder / "model.safetensors"), device=device)
    expected = model.state_dict()
    missing_keys = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    bad_shapes = [f"{k}: {tuple(weights[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if k in weights and weights[k].shape != v.shape]
    if missing_keys or unexpected or bad_shapes:
        raise BackendError(
            f"octo checkpoint {folder}/model.safetensors does not match config.json: "
            f"missing keys {missing_keys}, unexpected keys {unexpected}, wrong shapes {bad_shapes}"
        )
    model.load_state_dict(weights)
    return model.to(device).eval(), stats


class OctoBackend(Backend):
    supports_prefix = True

    def __init__(self, model: OctoModel, stats: DatasetStatistics, device: str = "cpu", seed: int = 0, max_guidance: float = 5.0):
        self.model = model
        self.cfg = model.cfg
        self.processor = OctoProcessor(self.cfg, stats)
        self.tokenizer = WordTokenizer(self.cfg.vocab, self.cfg.max_tokens)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.camera_names = self.cfg.camera_names
        self.joint_names = self.cfg.joint_names
        self.dt_s = self.cfg.dt_s
        self.horizon = self.cfg.horizon
        self.max_guidance = max_guidance

    def predict(self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None) -> ActionChunk:
        start = time.perf_counter()
        self._check(observation)
        q = observation.joint_positions
        dev = self.device
        images = {c: torch.from_numpy(image_input(observation.images[c], self.cfg.image_size))[None].to(dev) for c in self.camera_names}
        state = torch.from_numpy(self.processor.state_input(q))[None].to(dev)
        ids, valid = self.tokenizer(observation.instruction)
        shape = (1, self.horizon, self.cfg.action_dim)
        if noise is None:
            x = torch.randn(shape, generator=self.generator, device=dev)
        else:
            x = torch.as_tensor(noise, dtype=torch.float32, device=dev).reshape(shape)
        guide = None if prefix is None else self._guide(prefix, q, observation.stamp_s)
        # guidance differentiates through the head: no_grad (not inference_mode) keeps that possible
        with torch.inference_mode() if guide is None else torch.no_grad():
            emb = self.model.embed(images, state, torch.from_numpy(ids)[None].to(dev), torch.from_numpy(valid)[None].to(dev))
            out = self.model.sample(emb, x, self.generator, guide)[0].cpu().numpy()
        positions = self.processor.targets_to_actions(q, out)
        return ActionChunk(observation.stamp_s, self.dt_s, self.joint_names, positions, time.perf_counter() - start)

    def _check(self, observation: Observation) -> None:
        missing = [c for c in self.camera_names if c not in observation.images]
        if missing:
            raise BackendError(f"octo backend needs cameras {list(self.camera_names)}; observation lacks {missing}")
        if tuple(observation.joint_names) != self.joint_names:
            raise BackendError(f"octo backend expects joints {list(self.joint_names)}, got {list(observation.joint_names)}")

    def predict_batch(
        self, observations: list[Observation], noises: list[np.ndarray | None] | None = None
    ) -> list[ActionChunk]:
        """One forward pass for several observations (several robots on one server); chunk i is for
        observations[i]. noises[i]: (H, action_dim) or None. No plan prefix (guidance is per robot)."""
        start = time.perf_counter()
        for observation in observations:
            self._check(observation)
        dev, n = self.device, len(observations)
        noises = noises or [None] * n
        images = {
            c: torch.from_numpy(np.stack([image_input(o.images[c], self.cfg.image_size) for o in observations])).to(dev)
            for c in self.camera_names
        }
        state = np.stack([self.processor.state_input(o.joint_positions) for o in observations])
        state = torch.from_numpy(state).to(dev)
        tokens = [self.tokenizer(o.instruction) for o in observations]
        ids = torch.from_numpy(np.stack([t[0] for t in tokens])).to(dev)
        valid = torch.from_numpy(np.stack([t[1] for t in tokens])).to(dev)
        shape = (1, self.horizon, self.cfg.action_dim)
        x = torch.cat([
            torch.randn(shape, generator=self.generator, device=dev)
            if z is None
            else torch.as_tensor(z, dtype=torch.float32, device=dev).reshape(shape)
            for z in noises
        ])
        with torch.inference_mode():
            out = self.model.sample(self.model.embed(images, state, ids, valid), x, self.generator).cpu().numpy()
        elapsed = time.perf_counter() - start
        to_actions = self.processor.targets_to_actions
        return [
            ActionChunk(o.stamp_s, self.dt_s, self.joint_names, to_actions(o.joint_positions, out[i]), elapsed)
            for i, o in enumerate(observations)
        ]

    def _guide(self, prefix: PlanPrefix, q: np.ndarray, t0_s: float) -> tuple[torch.Tensor, torch.Tensor, float]:
        """RTC target (1, H, D) in model units and weights (H,) from the executor's plan ahead."""
        try:
            prefix = prefix.in_joint_order(self.joint_names)
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        targets, weights = prefix_on_grid(prefix, t0_s + self.dt_s * np.arange(1, self.horizon + 1))
        model_targets = self.processor.actions_to_targets(q, targets)
        return torch.from_numpy(model_targets)[None].to(self.device), torch.from_numpy(weights).float().to(self.device), self.max_guidance


def load_octo_backend(model_path: Path, device: str = "cpu", seed: int = 0, num_threads: int = 0, max_guidance: float = 5.0) -> OctoBackend:
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    if not model_path.is_dir():
        raise BackendError(f"octo checkpoint folder not found: {model_path}")
    model, stats = load_checkpoint(model_path, device)
    return OctoBackend(model, stats, device, seed, max_guidance)
