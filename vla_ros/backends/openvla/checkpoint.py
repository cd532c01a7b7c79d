"""OpenVLA checkpoint folder <-> model, statistics, processor settings and tokenizer.

A folder (as published on the hub, e.g. `openvla/openvla-7b`) holds `config.json`,
`model.safetensors.index.json` + its shards (or a single `model.safetensors`),
`preprocessor_config.json`, and the Llama-2 tokenizer (`tokenizer.json` and/or `tokenizer.model`
with `tokenizer_config.json`). Keys are the reference's: `vision_backbone.featurizer.*`,
`vision_backbone.fused_featurizer.*`, `projector.fc1/fc2/fc3.*`, `language_model.*`.
Any mismatch (missing shard, missing/unexpected key, wrong shape) is one BackendError, raised
before any weight is copied.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import choose_dataset
from vla_ros.backends.openvla.configuration import ImageProcessorConfig, OpenVLAConfig
from vla_ros.backends.openvla.modeling import OpenVLAModel
from vla_ros.backends.weights import check_shapes

CONFIG, INDEX, SINGLE, PREPROCESSOR = (
    "config.json",
    "model.safetensors.index.json",
    "model.safetensors",
    "preprocessor_config.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


# --- weights ------------------------------------------------------------------------------------


def weight_files(folder: Path) -> dict[str, Path]:
    """Key -> shard path, from the index (sharded) or the single file; BackendError on a missing shard."""
    index = folder / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BackendError(f"OpenVLA weights index {index}: needs a 'weight_map' of key -> shard ({exc})") from exc
        shards = sorted(set(weight_map.values()))
        absent = [s for s in shards if not (folder / s).is_file()]
        if absent:
            raise BackendError(f"OpenVLA checkpoint {folder}: shards listed in {INDEX} are missing: {absent}")
        return {k: folder / s for k, s in weight_map.items()}
    single = folder / SINGLE
    if not single.is_file():
        raise BackendError(f"OpenVLA checkpoint {folder}: no weights ({INDEX} with shards, or {SINGLE})")
    try:
        with safe_open(str(single), framework="pt") as f:
            return {k: single for k in f.keys()}
    except SafetensorError as exc:
        raise BackendError(f"OpenVLA weights {single}: not a readable safetensors file ({exc})") from exc


def load_weights(folder: Path, model: torch.nn.Module, what: str = "OpenVLA") -> None:
    """Copy the folder's tensors into `model` (any device/dtype); one BackendError naming every mismatch first."""
    files = weight_files(folder)
    expected = model.state_dict()
    by_shard: dict[Path, list[str]] = {}
    for key, path in files.items():
        by_shard.setdefault(path, []).append(key)
    try:
        shapes = {}
        for path, keys in by_shard.items():
            with safe_open(str(path), framework="pt") as f:
                present = set(f.keys())
                shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in keys if k in present})
        check_shapes(shapes, expected, f"{what} weights in {folder} do not match config.json")
        with torch.no_grad():
            for path, keys in by_shard.items():
                with safe_open(str(path), framework="pt") as f:
                    for key in keys:
                        expected[key].copy_(f.get_tensor(key))
    except SafetensorError as exc:
        raise BackendError(f"{what} weights in {folder}: not readable safetensors ({exc})") from exc


def save_sharded(folder: Path, tensors: dict[str, torch.Tensor], shards: int = 2) -> None:
    """`model-0000i-of-0000n.safetensors` + `model.safetensors.index.json`, keys split in order."""
    keys = list(tensors)
    per = -(-len(keys) // shards)
    weight_map, total = {}, 0
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: tensors[k].detach().contiguous() for k in keys[i * per : (i + 1) * per]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
        total += sum(t.numel() * t.element_size() for t in part.values())
    (folder / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))


# --- OpenVLA-OFT's extra modules (`action_head--<step>_checkpoint.pt`, `proprio_projector--...`) ---------


def find_component(folder: Path, name: str) -> Path | None:
    """The folder's `<name>--*checkpoint.pt`; BackendError if several (name the one to keep)."""
    found = sorted(folder.glob(f"{name}--*checkpoint.pt"))
    if len(found) > 1:
        raise BackendError(f"OpenVLA-OFT checkpoint {folder}: several {name} files {[f.name for f in found]}; keep one")
    return found[0] if found else None


def load_component(path: Path, module: torch.nn.Module) -> None:
    """A state dict saved with torch.save (DDP "module." prefixes dropped) into `module`; tensors only:
    a file that needs code to unpickle is refused. One BackendError naming every key mismatch first."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError or others for refused content
        raise BackendError(
            f"OpenVLA-OFT {path}: refused, not a plain tensor state dict (loaded with weights_only=True: {exc})"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackendError(f"OpenVLA-OFT {path}: expected a dict of tensors, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = module.state_dict()
    check_shapes(state, expected, f"OpenVLA-OFT {path.name} does not match the model")
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(state[key])


# --- configuration, statistics, tokenizer ----------------------------------------------------------


def check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise BackendError(f"OpenVLA checkpoint folder not found: {folder}")
    missing = [n for n in (CONFIG, PREPROCESSOR) if not (folder / n).is_file()]
    if not (folder / INDEX).is_file() and not (folder / SINGLE).is_file():
        missing.append(f"{INDEX} or {SINGLE}")
    if not any((folder / n).is_file() for n in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if missing:
        raise BackendError(f"OpenVLA checkpoint {folder}: missing {missing}")


def load_config(folder: Path) -> OpenVLAConfig:
    try:
        return OpenVLAConfig.load(folder / CONFIG)
    except ValueError as exc:
        raise BackendError(f"OpenVLA checkpoint: {exc}") from exc


def load_processor_config(folder: Path) -> ImageProcessorConfig:
    path = folder / PREPROCESSOR
    try:
        return ImageProcessorConfig.from_json(json.loads(path.read_text()), str(path))
    except (ValueError, json.JSONDecodeError) as exc:
        raise BackendError(f"OpenVLA checkpoint: {exc}") from exc


def select_stats(norm_stats: dict, unnorm_key: str | None, where: str) -> tuple[str, dict]:
    """(key, statistics of that dataset): `unnorm_key`, or the only one; BackendError listing the available keys."""
    unnorm_key = choose_dataset(sorted(norm_stats), unnorm_key, "unnorm_key", f"{where}: config.json norm_stats")
    stats = norm_stats[unnorm_key]
    action = stats.get("action") if isinstance(stats, dict) else None
    need = ("q01", "q99")
    if not isinstance(action, dict) or any(k not in action for k in need) or len(action["q01"]) != len(action["q99"]):
        raise BackendError(f"{where}: norm_stats[{unnorm_key!r}].action needs equal-length {list(need)}")
    return unnorm_key, stats


def load_tokenizer(folder: Path):
    """The checkpoint's own tokenizer (transformers, local files only)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise BackendError(f"OpenVLA checkpoint {folder}: cannot load the tokenizer ({exc})") from exc


def build_model(
    cfg: OpenVLAConfig, device: str = "cpu", dtype: torch.dtype = torch.float32, attention: str = "sdpa"
) -> OpenVLAModel:
    """Random-weight model built directly on `device` ("meta" allocates nothing) in `dtype`, eval mode."""
    with torch.device(device):
        model = OpenVLAModel(cfg, attention)
    return model.to(dtype).eval().requires_grad_(False)
