"""The OpenVLA backend: checkpoint folder + settings -> model, `predict_actions` and `predict`.

Settings come from the `config` option, else `<checkpoint>/openvla.yaml`, else the package's
`config/backends/openvla.yaml`. Explicit options (device, dtype, unnorm_key) override them.
OpenVLA predicts one action per forward (`action_dim` tokens): `predict` returns a 1-point chunk
due `dt_s` after the observation.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError
from vla_ros.backends.openvla.checkpoint import (
    build_model,
    check_folder,
    load_config,
    load_processor_config,
    load_tokenizer,
    load_weights,
    select_stats,
)
from vla_ros.backends.openvla.configuration import ImageProcessorConfig, OpenVLASettings
from vla_ros.backends.openvla.modeling import OpenVLAModel
from vla_ros.backends.openvla.processing import (
    ActionTokenizer,
    actions_to_joint_targets,
    pixel_values,
    prompt,
    unnormalize_q01_q99,
    with_empty_token,
)
from vla_ros.config import default_config_dir, resolve_package_path
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

SETTINGS_FILE = "openvla.yaml"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class OpenVLABackend(Backend):
    horizon = 1

    def __init__(self, model: OpenVLAModel, image_cfg: ImageProcessorConfig, tokenizer, settings: OpenVLASettings, action_stats: dict):
        self.model = model
        self.cfg = model.cfg
        self.image_cfg = image_cfg
        self.tokenizer = tokenizer
        self.settings = settings
        self.action_stats = action_stats
        self.action_dim = len(action_stats["q01"])
        if len(settings.joints) != self.action_dim:
            raise BackendError(
                f"OpenVLA ({settings.source}): joints {list(settings.joints)} must name the {self.action_dim} action dims of "
                f"unnorm_key {settings.unnorm_key!r}"
            )
        self.action_tokenizer = ActionTokenizer(self.cfg.action_vocab_end, self.cfg.n_action_bins)
        self.device = next(model.parameters()).device
        self.camera_names = (settings.camera,)
        self.joint_names = settings.joints
        self.dt_s = settings.dt_s
        self.relative = np.array([j in settings.relative_joints for j in settings.joints])

    def input_ids(self, instruction: str) -> list[int]:
        """Token ids of the prompt for `instruction` (BOS first, empty token last)."""
        return with_empty_token(self.tokenizer(prompt(instruction)).input_ids)

    def pixel_values(self, rgb: np.ndarray) -> np.ndarray:
        return pixel_values(rgb, self.image_cfg, self.settings.center_crop_scale)

    def generate(self, pixels: np.ndarray, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Greedy action tokens (A,) and their step logits (A, vocab) for model inputs."""
        pixels_t = torch.from_numpy(pixels)[None].to(self.device)
        ids_t = torch.tensor([ids], dtype=torch.long, device=self.device)
        tokens, logits = self.model.greedy_decode(pixels_t, ids_t, self.action_dim, self.settings.static_cache)
        return tokens.cpu().numpy(), logits.cpu().numpy()

    def predict_actions(self, observation: Observation) -> np.ndarray:
        """Unnormalised model actions (1, A) in the checkpoint's action space (e.g. Bridge end-effector deltas)."""
        if self.settings.camera not in observation.images:
            raise BackendError(f"OpenVLA backend needs camera {self.settings.camera!r}; observation has {sorted(observation.images)}")
        tokens, _ = self.generate(self.pixel_values(observation.images[self.settings.camera]), self.input_ids(observation.instruction))
        return unnormalize_q01_q99(self.action_tokenizer.decode(tokens), self.action_stats)[None]

    def predict(self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None) -> ActionChunk:
        start = time.perf_counter()
        index = {n: i for i, n in enumerate(observation.joint_names)}
        absent = [j for j in self.joint_names if j not in index]
        if absent:
            raise BackendError(f"OpenVLA backend expects joints {list(self.joint_names)}; the observation lacks {absent}")
        q = np.asarray(observation.joint_positions, dtype=np.float64)[[index[j] for j in self.joint_names]]
        targets = actions_to_joint_targets(self.predict_actions(observation), q, self.relative)
        return ActionChunk(observation.stamp_s, self.dt_s, self.joint_names, targets, time.perf_counter() - start)


def resolve_settings(model_path: Path | None, config: str | Path | None) -> OpenVLASettings:
    """The settings file: `config`, else `<model_path>/openvla.yaml`, else config/backends/openvla.yaml."""
    if config is not None:
        path = Path(config)
    elif model_path is not None and (model_path / SETTINGS_FILE).is_file():
        path = model_path / SETTINGS_FILE
    else:
        path = default_config_dir() / "backends" / SETTINGS_FILE
    try:
        return OpenVLASettings.load(path)
    except ValueError as exc:
        raise BackendError(f"OpenVLA settings: {exc}") from exc


def load_openvla_backend(
    model_path: Path | None = None,
    device: str | None = None,
    seed: int = 0,
    num_threads: int = 0,
    dtype: str | None = None,
    unnorm_key: str | None = None,
    config: str | Path | None = None,
    **_,
) -> OpenVLABackend:
    """OpenVLA backend from a checkpoint folder (`model_path`, else the settings' `checkpoint`).

    seed: unused (greedy decoding is deterministic); accepted like the other backends.
    """
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    settings = resolve_settings(Path(model_path) if model_path is not None else None, config)
    overrides = {k: v for k, v in (("device", device), ("dtype", dtype), ("unnorm_key", unnorm_key)) if v}
    try:
        settings = dataclasses.replace(settings, **overrides)
    except ValueError as exc:
        raise BackendError(f"OpenVLA settings: {exc}") from exc
    if model_path is None:
        if settings.checkpoint is None:
            raise BackendError(f"OpenVLA backend: no checkpoint folder given and {settings.source} sets no 'checkpoint'")
        model_path = resolve_package_path(settings.checkpoint)
    folder = Path(model_path)
    check_folder(folder)
    cfg = load_config(folder)
    key, stats = select_stats(cfg.norm_stats, settings.unnorm_key, f"OpenVLA checkpoint {folder}")
    settings = dataclasses.replace(settings, unnorm_key=key)
    image_cfg = load_processor_config(folder)
    if image_cfg.sizes != tuple(t.img_size for t in cfg.towers):
        raise BackendError(f"OpenVLA checkpoint {folder}: preprocessor input_sizes {image_cfg.sizes} differ from config.json image_sizes")
    tokenizer = load_tokenizer(folder)
    model = build_model(cfg, settings.device, DTYPES[settings.dtype], settings.attention)
    load_weights(folder, model)
    return OpenVLABackend(model, image_cfg, tokenizer, settings, stats["action"])
