"""Octo checkpoint folders <-> model: `config.json`, `model.safetensors`, `dataset_statistics.json`, of two
kinds, read into the same things (`load_checkpoint`: the net and an `OctoCheckpoint`) for the one backend:

- demo-style (the bundled demo model, `vla-ros train`): `config.json` is an OctoConfig (its `net_config`
  gives the one implementation's options), the statistics are state and action mean/std (normalisation.py),
  the task is word ids of the config's vocabulary; the weights are OctoNet's.
- released (written by `vla-ros convert octo`): `config.json` is an OctoNetConfig with format
  'octo-release', the statistics are the reference's per-dataset file, the task is T5 encoder states.

Loading checks every key and shape before any weight is copied."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.octo.configuration import OctoConfig, OctoNetConfig, OctoSettings
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.backends.octo.processing import T5TaskEncoder, feature_statistics, select_dataset
from vla_ros.backends.octo.text import WordTokenizer
from vla_ros.backends.weights import check_shapes

CHECKPOINT_FILES = ("config.json", "model.safetensors", "dataset_statistics.json")
RELEASE_ACTION_SPACE = {"preset": "bridge_ee_delta"}  # the released models' Bridge convention
RELEASE_DT_S = 0.2  # Bridge's 5 Hz


@dataclass(frozen=True)
class OctoCheckpoint:
    """What a checkpoint's kind decides besides the net (its options and weights); the backend is one.

    kind: "demo" (demo-style config.json) | "release" (a converted released model); where: for messages.
    config: the checkpoint's own config (OctoConfig | OctoNetConfig).
    action_stats: the model actions' statistics in the dataset's units, (A,) each: mean, std, mask (+ p01, p99).
    dataset_key: the statistics' dataset entry (released models), else None.
    state_stats: the normalisation of the proprio state (S,) for a model with a proprio token, else None.
    text_encoder: instruction -> language input: word ids (WordTokenizer), T5 states (T5TaskEncoder), None.
    joints, delta_mask: the checkpoint's joints in model order (empty: the settings must name them) and which
        are predicted relative to the state; dt_s: seconds between chunk points unless the settings say.
    action_space, action_space_source: the checkpoint's action space (None: joint positions) and its file.
    all_cameras: every camera in every frame (the model was trained without masked cameras)."""

    kind: str
    where: str
    config: OctoConfig | OctoNetConfig
    action_stats: dict
    dataset_key: str | None
    state_stats: FeatureStats | None
    text_encoder: WordTokenizer | T5TaskEncoder | None
    joints: tuple[str, ...]
    delta_mask: tuple[bool, ...]
    dt_s: float
    action_space: dict | None
    action_space_source: str
    all_cameras: bool


def save_checkpoint(folder: Path, net: OctoNet, cfg: OctoConfig, stats: DatasetStatistics) -> None:
    """config.json (`cfg`), model.safetensors (OctoNet's layout), dataset_statistics.json."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg.save(folder / "config.json")
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    stats.save(folder / "dataset_statistics.json")


def is_release_folder(folder: Path) -> bool:
    """Whether `folder` holds a converted released Octo model (config.json format 'octo-release')."""
    try:
        return json.loads((folder / "config.json").read_text()).get("format") == "octo-release"
    except (OSError, ValueError, AttributeError):
        return False


def load_config(folder: Path) -> tuple[OctoConfig, DatasetStatistics]:
    """A demo-style folder's config and statistics; BackendError naming the folder and any missing file."""
    if not folder.is_dir():
        raise BackendError(f"octo checkpoint folder not found: {folder}")
    if (folder / "config.json").is_file() and '"model"' in (folder / "config.json").read_text()[:100000]:
        try:
            released = "model" in json.loads((folder / "config.json").read_text())
        except ValueError:
            released = False
        if released:
            raise BackendError(
                f"octo checkpoint {folder} is a JAX Octo checkpoint (orbax params): convert it once with "
                f"`vla-ros convert octo {folder} <out folder>` and load the output folder"
            )
    missing = [f for f in CHECKPOINT_FILES if not (folder / f).is_file()]
    if missing:
        raise BackendError(
            f"octo checkpoint {folder}: missing {missing} (a checkpoint folder holds {list(CHECKPOINT_FILES)})"
        )
    try:
        return OctoConfig.load(folder / "config.json"), DatasetStatistics.load(folder / "dataset_statistics.json")
    except (ValueError, TypeError) as exc:
        raise BackendError(f"octo checkpoint {folder}: {exc}") from exc


def load_release_config(folder: Path) -> tuple[OctoNetConfig, dict]:
    """A converted released model's config and its statistics file as read (per dataset)."""
    try:
        cfg = OctoNetConfig.load(folder / "config.json")
        return cfg, json.loads((folder / "dataset_statistics.json").read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise BackendError(f"octo checkpoint {folder}: {exc}") from exc


def load_model(folder: Path, cfg: OctoConfig | OctoNetConfig, device: str = "cpu") -> OctoNet:
    """OctoNet (eval mode) with the folder's weights; cfg: a demo-style config (weights in either layout) or a
    released model's. One BackendError listing every mismatch (keys as the file names them)."""
    try:
        net = OctoNet(cfg.net_config() if isinstance(cfg, OctoConfig) else cfg)
    except ValueError as exc:
        raise BackendError(f"octo checkpoint {folder}/config.json: {exc}") from exc
    path = folder / "model.safetensors"
    if not path.is_file():
        raise BackendError(f"octo checkpoint {folder}: no model.safetensors (convert with `vla-ros convert octo`)")
    weights = load_file(str(path), device="cpu")
    where = f"octo checkpoint {path} (config.json)"
    check_shapes(weights, net.state_dict(), f"{where} does not match the model", limit=None)
    net.load_state_dict(weights)
    return net.to(device).eval()


def task_encoder(cfg: OctoNetConfig, settings: OctoSettings = OctoSettings()) -> WordTokenizer | T5TaskEncoder | None:
    """The model's instruction encoder: its word vocabulary, the T5 encoder of `settings.t5_folder` (not
    loaded for a goal-image task without a t5_folder), or None (no language task)."""
    if not cfg.language:
        return None
    if cfg.language_encoder == "words":
        return WordTokenizer(cfg.vocab, cfg.language_tokens)
    goal_only = settings.goal_image is not None or settings.goal_camera is not None
    if settings.t5_folder is None and goal_only:
        return None
    return T5TaskEncoder(settings.t5_folder, cfg.language_tokens, settings.device)


def demo_checkpoint(cfg: OctoConfig, stats: DatasetStatistics, where: str = "octo checkpoint") -> OctoCheckpoint:
    """A demo-style checkpoint's config and statistics (state and action mean/std of exactly the model's widths)."""
    if stats.state.mean.shape != (cfg.state_dim,) or stats.action.mean.shape != (cfg.action_dim,):
        raise BackendError(
            f"{where}: dataset statistics are for {stats.state.mean.shape[0]} state / {stats.action.mean.shape[0]} "
            f"action dims, the model has {cfg.state_dim} / {cfg.action_dim}"
        )
    return OctoCheckpoint(
        kind="demo", where=where, config=cfg, action_stats=feature_statistics(stats.action), dataset_key=None,
        state_stats=stats.state, text_encoder=task_encoder(cfg.net_config()), joints=cfg.joint_names,
        delta_mask=cfg.delta_mask, dt_s=cfg.dt_s, action_space=cfg.action_space or None,
        action_space_source=f"{where}/config.json", all_cameras=True,
    )  # fmt: skip


def release_checkpoint(cfg: OctoNetConfig, statistics: dict, settings: OctoSettings, where: str) -> OctoCheckpoint:
    """A converted released model: the statistics of the settings' dataset_key, its T5 encoder; Bridge's action
    space and 5 Hz unless the config or the settings say otherwise."""
    key, action_stats = select_dataset(statistics, settings.dataset_key, where)
    space, source = (cfg.action_space, f"{where}/config.json") if cfg.action_space else (
        RELEASE_ACTION_SPACE, "octo release default (Bridge)")  # fmt: skip
    return OctoCheckpoint(
        kind="release", where=where, config=cfg, action_stats=action_stats, dataset_key=key, state_stats=None,
        text_encoder=task_encoder(cfg, settings), joints=(), delta_mask=(), dt_s=RELEASE_DT_S, action_space=space,
        action_space_source=source, all_cameras=False,
    )  # fmt: skip


def load_checkpoint(folder: Path, settings: OctoSettings) -> tuple[OctoNet, OctoCheckpoint]:
    """The net (on settings.device) and what the folder's kind decides; BackendError naming file and key."""
    where = f"octo checkpoint {folder}"
    if is_release_folder(folder):
        cfg, statistics = load_release_config(folder)
        return load_model(folder, cfg, settings.device), release_checkpoint(cfg, statistics, settings, where)
    cfg, stats = load_config(folder)
    return load_model(folder, cfg, settings.device), demo_checkpoint(cfg, stats, where)
