"""Demo-style Octo checkpoint folder <-> model: `config.json` (OctoConfig), `model.safetensors`,
`dataset_statistics.json`. The model is the one Octo implementation (OctoNet) with the options
`OctoConfig.net_config` names. Weights saved by the former Octo-design model (the bundled demo's layout,
recognised by its `group_embed` key) are mapped to OctoNet's layout at load time (`from_design_layout`).
Loading checks every key and shape before any weight is copied."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import DatasetStatistics
from vla_ros.backends.octo.configuration import OctoConfig
from vla_ros.backends.octo.modeling import OctoNet
from vla_ros.backends.weights import check_shapes

CHECKPOINT_FILES = ("config.json", "model.safetensors", "dataset_statistics.json")
# the former layout's key prefixes that only moved: (regex, replacement)
DESIGN_RENAMES = (
    (r"^language\.", "text_encoder."),
    (r"^task_proj\.", "language_projection."),
    (r"^proprio\.", "proprio_projection."),
    (r"^time_features\.", "head.time_features."),
    (r"^time_mlp\.", "head.time_mlp."),
    (r"^head\.", "head.net."),
    (r"^transformer\.", "transformer."),
    (r"^image_tokenizers\.(\w+)\.proj\.", r"stems.\1.embedding."),
    (r"^image_tokenizers\.(\w+)\.films\.", r"stems.\1.films."),
)
TASK, OBS, READOUT = range(3)  # rows of the former layout's group_embed


def is_design_layout(weights: dict) -> bool:
    """Whether `weights` were saved by the former Octo-design model (per-group embeddings)."""
    return "group_embed" in weights


def _stem_conv_key(key: str) -> str | None:
    """image_tokenizers.<cam>.convs.<i>.* / norms.<i>.* -> stems.<cam>.convs.<3i | 3i + 1>.* (conv, GroupNorm, ReLU)."""
    m = re.match(r"^image_tokenizers\.(\w+)\.(convs|norms)\.(\d+)\.(.+)$", key)
    if m is None:
        return None
    index = 3 * int(m[3]) + (m[2] == "norms")
    return f"stems.{m[1]}.convs.{index}.{m[4]}"


def from_design_layout(old: dict[str, torch.Tensor], cfg: OctoConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """The former Octo-design model's weights in OctoNet's layout (config `cfg.net_config()`), and new key ->
    the file's key for error messages. Sums that the old model computed at run time are folded into one
    parameter: group_embed's rows join the language / image / proprio / readout position embeddings; each
    camera's 1x1 patch conv becomes the stem's embedding conv, its token projection the identity."""
    new: dict[str, torch.Tensor] = {}
    names: dict[str, str] = {}
    group = old.get("group_embed")
    for key, value in old.items():
        target = _stem_conv_key(key)
        for pattern, replacement in DESIGN_RENAMES:
            if target is None and re.match(pattern, key):
                target = re.sub(pattern, replacement, key)
        if key not in ("group_embed", "readout") and not re.match(r"^image_tokenizers\.\w+\.pos$", key):
            target = target or key  # not a former key: reported as unexpected
            new[target], names[target] = value, key
    if group is None:
        return new, names
    new["language_pos"] = group[TASK].expand(1, cfg.max_tokens, -1).clone()
    new["proprio_pos"] = group[OBS].reshape(1, 1, 1, -1).clone()
    if "readout" in old:
        new["readout_pos"] = (old["readout"] + group[READOUT]).reshape(1, 1, 1, -1)
    for camera in cfg.camera_names:
        if f"image_tokenizers.{camera}.pos" in old:
            new[f"obs_pos.{camera}"] = (old[f"image_tokenizers.{camera}.pos"] + group[OBS])[:, None]
        new[f"obs_projections.{camera}.weight"] = torch.eye(cfg.width)
        new[f"obs_projections.{camera}.bias"] = torch.zeros(cfg.width)
    names.update({"language_pos": "group_embed", "proprio_pos": "group_embed", "readout_pos": "readout"})
    names.update({f"obs_pos.{c}": f"image_tokenizers.{c}.pos" for c in cfg.camera_names})
    return new, names


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


def load_model(folder: Path, cfg: OctoConfig, device: str = "cpu") -> OctoNet:
    """OctoNet (eval mode) with the folder's weights, in either layout; one BackendError listing every mismatch
    (keys as the file names them)."""
    try:
        net = OctoNet(cfg.net_config())
    except ValueError as exc:
        raise BackendError(f"octo checkpoint {folder}/config.json: {exc}") from exc
    weights = load_file(str(folder / "model.safetensors"), device="cpu")
    where, names = f"octo checkpoint {folder}/model.safetensors (config.json)", {}
    if is_design_layout(weights):
        weights, names = from_design_layout(weights, cfg)
        where += " in the former Octo-design layout, mapped"
    check_shapes(weights, net.state_dict(), f"{where} does not match the model", names, limit=None)
    net.load_state_dict(weights)
    return net.to(device).eval()
