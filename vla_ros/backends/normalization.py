"""Dataset statistics and the transforms built on them, shared by every backend.

Statistics are data that ship with a checkpoint (`dataset_statistics.json`), not code paths.
Transforms are small and mirrored: `normalize`/`unnormalize`, `to_delta`/`to_absolute`.
Arrays are NumPy with the feature dimension last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.backends.base import BackendError


@dataclass(frozen=True)
class FeatureStats:
    """Per-dimension statistics of one feature (D,), with a mask of the dimensions to normalise."""

    mean: np.ndarray
    std: np.ndarray
    mask: np.ndarray  # bool (D,): False leaves the dimension raw (e.g. a gripper)

    @classmethod
    def from_data(cls, x: np.ndarray, mask: np.ndarray | None = None, min_std: float = 1e-3) -> "FeatureStats":
        """Statistics over all leading axes of x (..., D); std floored at `min_std` (constant dims map to 0)."""
        x = x.reshape(-1, x.shape[-1])
        m = np.ones(x.shape[-1], bool) if mask is None else np.asarray(mask, bool)
        return cls(x.mean(0), np.maximum(x.std(0), min_std), m)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / (self.std + 1e-6)
        return np.where(self.mask, z, x)

    def unnormalize(self, z: np.ndarray) -> np.ndarray:
        x = z * (self.std + 1e-6) + self.mean
        return np.where(self.mask, x, z)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "mask": self.mask.tolist()}

    @classmethod
    def from_json(cls, d: dict, where: str) -> "FeatureStats":
        try:
            mean = np.asarray(d["mean"], float)
            std = np.asarray(d["std"], float)
            mask = np.asarray(d.get("mask", [True] * len(mean)), bool)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: needs 'mean' and 'std' lists ({exc})") from exc
        if not (mean.shape == std.shape == mask.shape) or mean.ndim != 1:
            raise ValueError(f"{where}: mean/std/mask shapes differ: {mean.shape} {std.shape} {mask.shape}")
        return cls(mean, std, mask)


@dataclass(frozen=True)
class DatasetStatistics:
    """Statistics of the proprio state and of the actions a model was trained on."""

    state: FeatureStats
    action: FeatureStats

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"state": self.state.to_json(), "action": self.action.to_json()}, indent=1))

    @classmethod
    def load(cls, path: Path) -> "DatasetStatistics":
        if not path.is_file():
            raise FileNotFoundError(f"dataset statistics not found: {path}")
        raw = json.loads(path.read_text())
        for key in ("state", "action"):
            if key not in raw:
                raise ValueError(f"{path}: missing '{key}' statistics (keys: {sorted(raw)})")
        return cls(
            FeatureStats.from_json(raw["state"], f"{path}:state"),
            FeatureStats.from_json(raw["action"], f"{path}:action"),
        )


def to_delta(actions: np.ndarray, state: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Actions (..., H, D) relative to the current state (D,) where `mask` is True."""
    return np.where(mask, actions - state[..., None, :], actions)


def to_absolute(deltas: np.ndarray, state: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverse of `to_delta`."""
    return np.where(mask, deltas + state[..., None, :], deltas)


def choose_dataset(available: list[str], key: str | None, setting: str, where: str) -> str:
    """The dataset whose statistics a checkpoint uses: `key` (the backend setting named `setting`), or
    the only one. BackendError naming `where`, the setting and the available keys otherwise."""
    if not available:
        raise BackendError(f"{where}: no dataset statistics with action entries")
    if key is None:
        if len(available) > 1:
            raise BackendError(f"{where}: statistics of several datasets; set {setting} to one of {available}")
        return available[0]
    if key not in available:
        raise BackendError(f"{where}: {setting} {key!r} not found; available: {available}")
    return key


# How a checkpoint's actions (and states) were normalised, named once for every backend's `normalization`
# setting: mean_std (mean / std), quantiles (q01 / q99 bounds to [-1, 1]), min_max (min / max bounds).
NORMALIZATION_MODES = ("mean_std", "quantiles", "min_max")
_FORMER_NAMES = {"normal": "mean_std", "bounds_q99": "quantiles", "bounds": "min_max (or quantiles for Octo's p01/p99)"}


def check_normalization(where: str, mode: str, supported: tuple[str, ...] = NORMALIZATION_MODES) -> None:
    """ValueError naming `mode` unless it is one of `supported`; a former name is answered with the new one."""
    if mode in supported:
        return
    if mode in _FORMER_NAMES:
        raise ValueError(f"{where}: normalization: {mode!r} is a former name; write {_FORMER_NAMES[mode]}")
    raise ValueError(f"{where}: normalization: must be one of {list(supported)}, got {mode!r}")
