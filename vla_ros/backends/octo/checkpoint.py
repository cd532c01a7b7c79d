"""Octo-design checkpoint folder <-> model: `config.json` (OctoConfig), `model.safetensors`,
`dataset_statistics.json`. Loading checks every key and shape before any weight is copied."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import DatasetStatistics
from vla_ros.backends.octo.configuration import OctoConfig
from vla_ros.backends.octo.modeling import OctoModel
from vla_ros.backends.weights import check_state_dict

CHECKPOINT_FILES = ("config.json", "model.safetensors", "dataset_statistics.json")


def save_checkpoint(folder: Path, model: OctoModel, stats: DatasetStatistics) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.cfg.save(folder / "config.json")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    stats.save(folder / "dataset_statistics.json")


def is_release_folder(folder: Path) -> bool:
    """Whether `folder` holds a converted released Octo model (config.json format 'octo-release')."""
    try:
        return json.loads((folder / "config.json").read_text()).get("format") == "octo-release"
    except (OSError, ValueError, AttributeError):
        return False


def load_config(folder: Path) -> tuple[OctoConfig, DatasetStatistics]:
    """The folder's config and statistics; BackendError naming the folder and any missing file."""
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


def load_model(folder: Path, cfg: OctoConfig, device: str = "cpu") -> OctoModel:
    """The model (eval mode) with the folder's weights; one BackendError listing every mismatch."""
    model = OctoModel(cfg)
    weights = load_file(str(folder / "model.safetensors"), device=device)
    check_state_dict(weights, model.state_dict(), f"octo checkpoint {folder}/model.safetensors (config.json)")
    model.load_state_dict(weights)
    return model.to(device).eval()
