"""The OpenVLA backend: checkpoint folder + settings -> model, `predict_actions` and `predict`.

Settings come from the `config` option, else `<checkpoint>/openvla.yaml`, else the package's
`config/backends/openvla.yaml`. Explicit options (device, dtype, unnorm_key) override them.
OpenVLA predicts one action per forward (`action_dim` tokens): `predict` returns a 1-point chunk
due `dt_s` after the observation. OpenVLA-OFT (`oft: true`) predicts `chunk_size` actions per
forward from its extra `action_head--*.pt` (and `proprio_projector--*.pt`) files.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_ros.backends.base import Backend, BackendError, backend_joints, checkpoint_folder, require_cameras
from vla_ros.backends.openvla.checkpoint import (
    build_model,
    check_folder,
    find_component,
    load_component,
    load_config,
    load_processor_config,
    load_tokenizer,
    load_weights,
    select_stats,
)
from vla_ros.backends.openvla.configuration import ImageProcessorConfig, OpenVLASettings
from vla_ros.backends.openvla.modeling import L1RegressionActionHead, OpenVLAModel, ProprioProjector
from vla_ros.backends.openvla.processing import (
    ActionTokenizer,
    normalize,
    pixel_values,
    prompt,
    unnormalize,
    with_empty_token,
)
from vla_ros.backends.settings import SettingsError, resolve_settings, settings_layers, with_robot_joints
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
STOP_TOKEN_ID = 2  # Llama-2 </s>, closing OFT's placeholder actions as in training
OFT_RANGE_EPS = 1e-8  # OFT's unnormalisation widens the range by this


@dataclasses.dataclass
class OFTHeads:
    """OpenVLA-OFT's modules outside the VLM."""

    action_head: L1RegressionActionHead
    proprio_projector: ProprioProjector | None = None
    proprio_stats: dict | None = None


class OpenVLABackend(Backend):
    def __init__(
        self,
        model: OpenVLAModel,
        image_cfg: ImageProcessorConfig,
        tokenizer,
        settings: OpenVLASettings,
        stats: dict,
        oft: OFTHeads | None = None,
    ):
        self.model = model
        self.cfg = model.cfg
        self.image_cfg = image_cfg
        self.tokenizer = tokenizer
        self.settings = settings
        self.action_stats = stats["action"]
        self.oft = oft
        self.action_dim = len(self.action_stats["q01"])
        self.action_tokenizer = ActionTokenizer(self.cfg.action_vocab_end, self.cfg.n_action_bins)
        self.device = next(model.parameters()).device
        self.camera_names = settings.robot_cameras
        self.joint_names = settings.joints
        self.dt_s = settings.dt_s
        self.horizon = settings.chunk_size if oft is not None else 1
        self.relative_joints = settings.relative_joints
        self.action_space = settings.action_space
        self.action_space_source = settings.source

    def bind_robot(self, robot=None) -> None:
        """Backend.bind_robot, then check that the action space has the checkpoint's action width (and, for an
        OFT proprio input read from the action space's state, its width)."""
        super().bind_robot(robot)
        oft = self.oft
        named = self.settings.proprio_joints
        state_types = [g.type for g in self.output.space.state.groups]
        if oft is not None and oft.proprio_projector is not None and named and state_types != ["joint_position"]:
            raise BackendError(
                f"OpenVLA-OFT ({self.settings.source}): proprio_joints {list(named)} feed joint positions, but the "
                f"checkpoint's action space '{self.output.space.name}' says its proprio state is {state_types} (the "
                "end-effector pose for LIBERO): leave proprio_joints unset to feed that state"
            )
        if oft is not None and oft.proprio_projector is not None and not named:
            dims = len(oft.proprio_stats["q01"])
            if self.output.state_dim != dims:
                raise BackendError(
                    f"OpenVLA-OFT ({self.settings.source}): the proprio projector takes {dims} values; the action "
                    f"space '{self.output.space.name}' gives a state of {self.output.state_dim} (name proprio_joints "
                    "for a joint-position proprio input)"
                )
        if self.output.action_dim != self.action_dim:
            space = self.output.space.name
            hint = (
                f"joints {list(self.joint_names)} must name the {self.action_dim} action dims, or the checkpoint "
                "(or the robot config) must name its action space"
                if space == "joint_positions"
                else f"action space '{space}' takes {self.output.action_dim} values per point"
            )
            raise BackendError(
                f"OpenVLA ({self.settings.source}): {hint}; unnorm_key {self.settings.unnorm_key!r} has "
                f"{self.action_dim} action dims"
            )

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

    def regress(self, pixels: np.ndarray, ids: list[int], proprio: np.ndarray | None = None) -> np.ndarray:
        """OFT: normalised action chunk (chunk_size, A) for model inputs; proprio (P,) normalised."""
        dev, oft = self.device, self.oft
        extra = None
        if oft.proprio_projector is not None:
            p = torch.from_numpy(np.asarray(proprio, dtype=np.float32))[None].to(
                dev, oft.proprio_projector.fc1.weight.dtype
            )
            extra = oft.proprio_projector(p)
        with torch.no_grad():
            embeds = self.model.embed(torch.from_numpy(pixels)[None].to(dev), torch.tensor([ids], device=dev), extra)
            hidden = self.model.parallel_hidden(embeds, self.settings.chunk_size * self.action_dim, STOP_TOKEN_ID)
            head_dtype = oft.action_head.model.fc1.weight.dtype
            return oft.action_head(hidden.to(head_dtype), self.settings.chunk_size)[0].float().cpu().numpy()

    def predict_actions(self, observation: Observation) -> np.ndarray:
        """Unnormalised model actions (H, A) in the checkpoint's action space (e.g. Bridge end-effector deltas);
        H = 1 for OpenVLA, chunk_size for OFT."""
        require_cameras(observation, self.camera_names, "OpenVLA backend")
        ids = self.input_ids(observation.instruction)
        if self.oft is None:
            tokens, _ = self.generate(self.pixel_values(observation.images[self.camera_names[0]]), ids)
            return unnormalize(self.action_tokenizer.decode(tokens), self.action_stats)[None]
        pixels = np.concatenate([self.pixel_values(observation.images[c]) for c in self.camera_names], axis=0)
        proprio = None
        if self.oft.proprio_projector is not None:  # the named joints, else the action space's state (LIBERO: EE pose)
            joints = self.settings.proprio_joints
            q = self._joints(observation, joints) if joints else self.output.state_vector(self._robot_q(observation))
            proprio = normalize(q, self.oft.proprio_stats, self.settings.normalization)
        normalized = self.regress(pixels, ids, proprio)
        return unnormalize(normalized, self.action_stats, self.settings.normalization, OFT_RANGE_EPS)

    def _robot_q(self, observation: Observation) -> np.ndarray:
        """The observed positions of the action space's joints."""
        return self._joints(observation, self.output.joint_names)

    def _joints(self, observation: Observation, names: tuple[str, ...]) -> np.ndarray:
        return backend_joints(observation.joint_names, observation.joint_positions, names, "OpenVLA backend")

    def predict(
        self, observation: Observation, noise: np.ndarray | None = None, prefix: PlanPrefix | None = None
    ) -> ActionChunk:
        start = time.perf_counter()
        q = self._joints(observation, self.joint_names)
        if self.output is None:
            raise BackendError("OpenVLA backend: call bind_robot first (load_backend does)")
        actions = self.predict_actions(observation)
        return self.output.to_chunk(actions, q, observation.stamp_s, self.dt_s, prefix, time.perf_counter() - start)


def load_openvla_backend(
    model_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    robot=None,
    *,
    config: str | Path | None = None,
) -> OpenVLABackend:
    """OpenVLA backend from a checkpoint folder (`model_path`, else the settings' `checkpoint`), settings
    layered over `overrides` (node parameters; backends/settings.py). `config`: a settings file used in
    place of `<model_path>/openvla.yaml`. seed: unused (greedy decoding is deterministic).
    """
    try:
        layers = settings_layers("openvla", model_path, overrides or {}, settings_file=Path(config) if config else None)
        settings, sources = resolve_settings(OpenVLASettings, layers)
    except SettingsError as exc:
        raise BackendError(f"OpenVLA settings: {exc}") from exc
    folder = checkpoint_folder(model_path, settings, "OpenVLA backend")
    check_folder(folder)
    settings, sources = robot_facts(settings, sources, robot)
    cfg = load_config(folder)
    key, stats = select_stats(cfg.norm_stats, settings.unnorm_key, f"OpenVLA checkpoint {folder}")
    settings = dataclasses.replace(settings, unnorm_key=key)
    image_cfg = load_processor_config(folder)
    if image_cfg.sizes != tuple(t.img_size for t in cfg.towers):
        raise BackendError(
            f"OpenVLA checkpoint {folder}: preprocessor input_sizes {image_cfg.sizes} "
            "differ from config.json image_sizes"
        )
    tokenizer = load_tokenizer(folder)
    model = build_model(cfg, settings.device, DTYPES[settings.dtype], settings.attention)
    load_weights(folder, model)
    oft = load_oft_heads(folder, cfg.hidden_size, settings, stats) if settings.oft else None
    backend = OpenVLABackend(model, image_cfg, tokenizer, settings, stats, oft)
    backend.settings_sources = sources
    if robot is None and backend.action_space is None:  # joint positions; with a robot, load_backend binds it
        backend.bind_robot(None)
    return backend


def robot_facts(settings: OpenVLASettings, sources: dict, robot) -> tuple[OpenVLASettings, dict]:
    """Joints and cameras the settings leave open, from the robot config (joints: all of them; cameras: the
    first as the primary image)."""
    try:
        settings, sources = with_robot_joints(settings, sources, robot, "OpenVLA backend")
    except SettingsError as exc:
        raise BackendError(f"OpenVLA settings: {exc}") from exc
    if settings.cameras is None:
        first = robot.camera_names[:1] if robot else ()
        if not first:
            raise BackendError(f"OpenVLA settings ({settings.source}): cameras: none set and no robot camera to use")
        settings = dataclasses.replace(settings, cameras={"primary": first[0]})
        sources = {**sources, "cameras": f"default: the first camera of {robot.source}"}
    return settings, sources


def load_oft_heads(folder: Path, hidden_size: int, settings: OpenVLASettings, stats: dict) -> OFTHeads:
    """The L1 action head and, when the folder has one, the proprio projector (sizes from the statistics)."""
    dtype = DTYPES[settings.dtype]
    head_file = find_component(folder, "action_head")
    if head_file is None:
        raise BackendError(
            f"OpenVLA-OFT checkpoint {folder}: no action_head--*checkpoint.pt (oft: true in {settings.source})"
        )
    with torch.device(settings.device):
        head = L1RegressionActionHead(hidden_size, len(stats["action"]["q01"]))
    load_component(head_file, head)
    heads = OFTHeads(head.to(dtype).eval())
    projector_file = find_component(folder, "proprio_projector")
    if projector_file is None:
        if settings.proprio_joints:
            raise BackendError(
                f"OpenVLA-OFT checkpoint {folder}: proprio_joints set in {settings.source} "
                "but no proprio_projector--*checkpoint.pt"
            )
        return heads
    proprio_stats = stats.get("proprio")
    if not proprio_stats:
        raise BackendError(
            f"OpenVLA-OFT checkpoint {folder}: has {projector_file.name} but config.json has no "
            "norm_stats[unnorm_key].proprio"
        )
    dims = len(proprio_stats["q01"])
    if settings.proprio_joints and dims != len(settings.proprio_joints):
        raise BackendError(
            f"OpenVLA-OFT: proprio_joints {list(settings.proprio_joints)} must match the "
            f"{len(proprio_stats['q01'])} proprio dims of the statistics"
        )
    with torch.device(settings.device):  # the input: proprio_joints, else the action space's state (bind_robot checks)
        projector = ProprioProjector(hidden_size, dims)
    load_component(projector_file, projector)
    heads.proprio_projector, heads.proprio_stats = projector.to(dtype).eval(), proprio_stats
    return heads
