"""π₀ checkpoint folder <-> model, statistics and tokenizer (PyTorch layout of openpi / LeRobot).

A folder holds `config.json` (`Pi0Config.from_json`), `model.safetensors` with the keys of
openpi's `PI0Pytorch` (`paligemma_with_expert.paligemma.model.language_model.layers.{i}...`,
`paligemma_with_expert.gemma_expert.model.layers.{i}...`, `state_proj`, `action_in_proj`,
`action_time_mlp_in/out`, `action_out_proj`; LeRobot prefixes them with `model.`), normalization
statistics (openpi `norm_stats.json`, also under `assets/<id>/`, or LeRobot's
`*normalizer_processor*.safetensors`) and the PaliGemma SentencePiece `tokenizer.model`.

Known extras of real checkpoints are accepted: `paligemma.lm_head.weight` is tied to the token
embedding (safetensors keeps only one of the two names) and `gemma_expert.lm_head.weight` is an
unused leftover of the converter. Anything else missing, unexpected or misshaped is one
BackendError, raised before any weight is copied.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.pi0.configuration import Pi0Config
from vla_ros.backends.pi0.modeling import Pi0Model

CONFIG, WEIGHTS, NORM_STATS = "config.json", "model.safetensors", "norm_stats.json"
TOKENIZER_NAMES = ("tokenizer.model", "paligemma_tokenizer.model")
LEROBOT_PREFIX = "model."
EMBED_KEY = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
TIED_TO_EMBED = "paligemma_with_expert.paligemma.lm_head.weight"
UNUSED_KEYS = ("paligemma_with_expert.gemma_expert.lm_head.weight",)
LEROBOT_STATS = {"state": "observation.state", "action": "action"}
_LISTED = 12  # keys named per category in an error


# --- weights ----------------------------------------------------------------------------------


def save_weights(path: Path, model: Pi0Model, key_prefix: str = "") -> None:
    """model.safetensors in the real key layout (`key_prefix="model."` writes LeRobot's)."""
    save_file({key_prefix + k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))


def _canonical_names(file_keys: list[str]) -> dict[str, str]:
    """Model key -> key in the file (LeRobot prefix dropped, tied lm_head standing in for the embedding)."""
    names = {(k.removeprefix(LEROBOT_PREFIX)): k for k in file_keys}
    if EMBED_KEY not in names and TIED_TO_EMBED in names:
        names[EMBED_KEY] = names[TIED_TO_EMBED]
    names.pop(TIED_TO_EMBED, None)
    for key in UNUSED_KEYS:
        names.pop(key, None)
    return names


def _listing(keys: list[str]) -> str:
    more = f" (+{len(keys) - _LISTED} more)" if len(keys) > _LISTED else ""
    return f"{keys[:_LISTED]}{more}"


def load_weights(path: Path, model: Pi0Model) -> None:
    """Copy `path`'s tensors into `model` (any device/dtype); BackendError naming every mismatch first."""
    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt") as f:
            names = _canonical_names(list(f.keys()))
            shapes = {k: tuple(f.get_slice(names[k]).get_shape()) for k in names}
            missing = sorted(set(expected) - set(names))
            unexpected = sorted(names[k] for k in set(names) - set(expected))
            wrong = [f"{names[k]}: {shapes[k]} != {tuple(v.shape)}" for k, v in expected.items() if k in shapes and shapes[k] != tuple(v.shape)]
            if missing or unexpected or wrong:
                raise BackendError(
                    f"π₀ weights {path} do not match config.json: missing keys {_listing(missing)}, "
                    f"unexpected keys {_listing(unexpected)}, wrong shapes {_listing(wrong)}"
                )
            with torch.no_grad():
                for key, target in expected.items():
                    target.copy_(f.get_tensor(names[key]))
    except SafetensorError as exc:
        raise BackendError(f"π₀ weights {path}: not a readable safetensors file ({exc})") from exc


# --- normalization statistics -------------------------------------------------------------------


def save_norm_stats(path: Path, stats: DatasetStatistics) -> None:
    """openpi's `norm_stats.json` layout."""
    raw = {"state": stats.state.to_json(), "actions": stats.action.to_json()}
    path.write_text(json.dumps({"norm_stats": raw}, indent=1))


def _openpi_stats(path: Path) -> DatasetStatistics:
    raw = json.loads(path.read_text())
    stats = raw.get("norm_stats", raw) if isinstance(raw, dict) else None
    if not isinstance(stats, dict) or "state" not in stats or "actions" not in stats:
        found = sorted(stats) if isinstance(stats, dict) else type(raw).__name__
        raise ValueError(f"{path}: needs norm_stats.state and norm_stats.actions (found {found})")
    return DatasetStatistics(FeatureStats.from_json(stats["state"], f"{path}:state"), FeatureStats.from_json(stats["actions"], f"{path}:actions"))


def _lerobot_stats(files: list[Path]) -> DatasetStatistics:
    flat: dict[str, np.ndarray] = {}
    for file in files:
        with safe_open(str(file), framework="np") as f:
            flat.update({k: f.get_tensor(k) for k in f.keys()})
    need = [f"{LEROBOT_STATS[k]}.{s}" for k in ("state", "action") for s in ("mean", "std")]
    absent = [k for k in need if k not in flat]
    if absent:
        raise ValueError(f"{[str(f) for f in files]}: missing {absent}")

    def feature(key: str) -> FeatureStats:
        mean = np.asarray(flat[f"{LEROBOT_STATS[key]}.mean"], float).reshape(-1)
        return FeatureStats(mean, np.asarray(flat[f"{LEROBOT_STATS[key]}.std"], float).reshape(-1), np.ones(mean.shape, bool))

    return DatasetStatistics(feature("state"), feature("action"))


def load_norm_stats(folder: Path, explicit: str | None = None) -> DatasetStatistics:
    """Statistics from `explicit` (relative to `folder`), else the first of: norm_stats.json,
    assets/*/norm_stats.json (exactly one), LeRobot's normalizer safetensors."""
    try:
        if explicit is not None:
            path = folder / explicit
            if not path.is_file():
                raise BackendError(f"π₀ normalization statistics not found: {path} (norm_stats setting)")
            return _lerobot_stats([path]) if path.suffix == ".safetensors" else _openpi_stats(path)
        if (folder / NORM_STATS).is_file():
            return _openpi_stats(folder / NORM_STATS)
        assets = sorted(folder.glob(f"assets/*/{NORM_STATS}"))
        if len(assets) > 1:
            raise BackendError(f"π₀ checkpoint {folder}: several statistics {[str(a) for a in assets]}; pick one with the norm_stats setting")
        if assets:
            return _openpi_stats(assets[0])
        lerobot = sorted(folder.glob("*normalizer_processor*.safetensors"))
        if lerobot:
            return _lerobot_stats(lerobot)
    except (ValueError, KeyError, SafetensorError) as exc:
        raise BackendError(f"π₀ normalization statistics: {exc}") from exc
    raise BackendError(
        f"π₀ checkpoint {folder}: no normalization statistics (looked for {NORM_STATS}, assets/*/{NORM_STATS}, "
        "*normalizer_processor*.safetensors)"
    )


# --- the folder ---------------------------------------------------------------------------------


def find_tokenizer(folder: Path) -> Path | None:
    return next((folder / n for n in TOKENIZER_NAMES if (folder / n).is_file()), None)


def check_folder(folder: Path) -> None:
    """BackendError naming every required file the folder lacks."""
    if not folder.is_dir():
        raise BackendError(f"π₀ checkpoint folder not found: {folder}")
    missing = [n for n in (CONFIG, WEIGHTS) if not (folder / n).is_file()]
    if find_tokenizer(folder) is None:
        missing.append(" or ".join(TOKENIZER_NAMES))
    if missing:
        raise BackendError(f"π₀ checkpoint {folder}: missing {missing} (needs {CONFIG}, {WEIGHTS}, normalization statistics and {TOKENIZER_NAMES[0]})")


def load_config(folder: Path) -> Pi0Config:
    try:
        return Pi0Config.load(folder / CONFIG)
    except ValueError as exc:
        raise BackendError(f"π₀ checkpoint: {exc}") from exc


def build_model(cfg: Pi0Config, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Pi0Model:
    """Random-weight model built directly on `device`, transformer stacks in `dtype`, for inference
    (eval mode, no parameter gradients: RTC guidance differentiates with respect to the actions only)."""
    with torch.device(device):
        model = Pi0Model(cfg)
    return model.set_dtype(dtype).eval().requires_grad_(False)
