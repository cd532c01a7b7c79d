"""Dataset statistics and the transforms built on them, shared by every backend.

Statistics are data that ship with a checkpoint (`dataset_statistics.json`), not code paths.
Transforms are small and mirrored: `normalize`/`unnormalize`.
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

    def normalizer(self) -> Normalizer:
        """mean/std with 1e-6 added to std (the demo models' convention)."""
        return Normalizer("mean_std", "eps_added", 1e-6, {"mean": self.mean, "std": self.std}, self.mask)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return self.normalizer().normalize(x)

    def unnormalize(self, z: np.ndarray) -> np.ndarray:
        return self.normalizer().unnormalize(z)

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


# --- normalisers -----------------------------------------------------------------------------------------------
# One Normalizer for every backend. Formulas, per mode (eps per CONVENTIONS):
#   mean_std   z = (x - mean) / std                      x = z std + mean
#   quantiles  z = 2 (x - q01) / (q99 - q01) - 1          x = (z + 1) / 2 (q99 - q01) + q01
#   quantile10 the same with q10 / q90; min_max with min / max; identity leaves values unchanged
# A False in the optional per-dimension mask leaves that dimension raw. Arrays are (..., D), float64.

# Each mode's statistics (they also name the modes: the normalization settings take mean_std, quantiles, min_max).
NEEDS = {
    "mean_std": ("mean", "std"),
    "quantiles": ("q01", "q99"),
    "quantile10": ("q10", "q90"),
    "min_max": ("min", "max"),
    "identity": (),
}
# How a toolchain applies eps (the modes' formulas are in the module docstring):
CONVENTIONS = {
    "eps_added": "std + eps and range + eps, both ways (openpi; OpenVLA with eps 0, OFT 1e-8; demo statistics 1e-6)",
    "lerobot": "std + eps on normalise only, plain std back; eps for a zero range (LeRobot's NormalizerProcessorStep)",
    "eps_floor": "std and range floored at eps, both ways (Octo)",
}
ORIGIN_CONVENTION = {"openpi": "eps_added", "lerobot": "lerobot"}  # π₀-family checkpoint origin -> convention


@dataclass(frozen=True)
class Normalizer:
    """One feature's normalisation: `mode` (NEEDS), the `convention` its toolchain applies eps with (CONVENTIONS),
    the statistics, an optional per-dimension mask (False: left raw) and, for inputs, `clip` to [-1, 1]."""

    mode: str  # mean_std | quantiles | quantile10 | min_max | identity
    convention: str  # eps_added | lerobot | eps_floor
    eps: float
    stats: dict[str, np.ndarray]  # the mode's statistics, each (D,)
    mask: np.ndarray | None = None  # (D,) bool: False leaves the dimension raw
    clip: bool = False  # normalised values clipped to [-1, 1] (OpenVLA-OFT's proprio input)

    def __post_init__(self):
        if self.mode not in NEEDS or self.convention not in CONVENTIONS:
            raise ValueError(f"normalisation {self.mode!r} / {self.convention!r}: unknown mode or convention")

    @classmethod
    def from_stats(
        cls, raw: dict, mode: str, convention: str, eps: float, dims: int, where: str, clip: bool = False
    ) -> Normalizer:
        """From a feature's statistics {name: list}, first `dims` dimensions; ValueError naming what is missing."""
        need = NEEDS[mode]
        absent = [k for k in need if k not in raw]
        if absent:
            raise ValueError(f"{where}: {mode} normalisation needs {list(need)}, missing {absent} (has {sorted(raw)})")
        stats = {k: np.asarray(raw[k], np.float64).reshape(-1) for k in need}
        short = {k: v.shape[0] for k, v in stats.items() if v.shape[0] < dims}
        if short:
            raise ValueError(f"{where}: statistics too short for {dims} dimensions: {short}")
        mask = np.asarray(raw["mask"], bool).reshape(-1)[:dims] if "mask" in raw else None
        return cls(mode, convention, eps, {k: v[:dims] for k, v in stats.items()}, mask, clip)

    def _low_range(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = (self.stats[k] for k in NEEDS[self.mode])
        span = hi - lo
        if self.convention == "eps_added":
            return lo, span + self.eps
        if self.convention == "eps_floor":
            return lo, np.maximum(span, self.eps)
        return lo, np.where(span == 0, self.eps, span)

    def _std(self, normalizing: bool) -> np.ndarray:
        std = self.stats["std"]
        if self.convention == "eps_floor":
            return np.maximum(std, self.eps)
        return std + self.eps if normalizing or self.convention == "eps_added" else std

    def normalize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.mode == "identity":
            return x
        if self.mode == "mean_std":
            z = (x - self.stats["mean"]) / self._std(normalizing=True)
        else:
            lo, span = self._low_range()
            z = 2.0 * (x - lo) / span - 1.0
        z = z if self.mask is None else np.where(self.mask, z, x)
        return np.clip(z, -1.0, 1.0) if self.clip else z

    def unnormalize(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float64)
        if self.mode == "identity":
            return z
        if self.mode == "mean_std":
            x = z * self._std(normalizing=False) + self.stats["mean"]
        else:
            lo, span = self._low_range()
            x = (z + 1.0) / 2.0 * span + lo
        return x if self.mask is None else np.where(self.mask, x, z)
