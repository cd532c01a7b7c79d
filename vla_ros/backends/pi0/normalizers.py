"""Per-feature normalisation of the π₀ family, exactly as each origin computes it.

openpi (`transforms.Normalize` / `Unnormalize`), eps = 1e-6 on both sides:
  mean_std   z = (x - mean) / (std + eps)              x = z (std + eps) + mean
  quantiles  z = 2 (x - q01) / (q99 - q01 + eps) - 1   x = (z + 1) / 2 (q99 - q01 + eps) + q01
LeRobot (`NormalizerProcessorStep`), eps = 1e-8 by default:
  mean_std   z = (x - mean) / (std + eps)              x = z std + mean
  quantiles  z = 2 (x - q01) / d - 1, d = q99 - q01 (eps where d == 0); x = (z + 1) d / 2 + q01
  quantile10 the same with q10 / q90; min_max with min / max
identity leaves values unchanged; so does a False in an optional per-dimension `mask`.
Arrays are (..., D), float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEEDS = {
    "mean_std": ("mean", "std"),
    "quantiles": ("q01", "q99"),
    "quantile10": ("q10", "q90"),
    "min_max": ("min", "max"),
    "identity": (),
}


@dataclass(frozen=True)
class Normalizer:
    mode: str  # mean_std | quantiles | quantile10 | min_max | identity
    origin: str  # openpi | lerobot
    eps: float
    stats: dict[str, np.ndarray]  # the mode's statistics, each (D,)
    mask: np.ndarray | None = None  # (D,) bool: False leaves the dimension raw

    @classmethod
    def from_stats(cls, raw: dict, mode: str, origin: str, eps: float, dims: int, where: str) -> Normalizer:
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
        return cls(mode, origin, eps, {k: v[:dims] for k, v in stats.items()}, mask)

    def _low_range(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = (self.stats[k] for k in NEEDS[self.mode])
        if self.origin == "openpi":
            return lo, hi - lo + self.eps
        span = hi - lo
        return lo, np.where(span == 0, self.eps, span)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.mode == "identity":
            return x
        if self.mode == "mean_std":
            z = (x - self.stats["mean"]) / (self.stats["std"] + self.eps)
        else:
            lo, span = self._low_range()
            z = 2.0 * (x - lo) / span - 1.0
        return z if self.mask is None else np.where(self.mask, z, x)

    def unnormalize(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float64)
        if self.mode == "identity":
            return z
        if self.mode == "mean_std":
            std = self.stats["std"] + (self.eps if self.origin == "openpi" else 0.0)
            x = z * std + self.stats["mean"]
        else:
            lo, span = self._low_range()
            x = (z + 1.0) / 2.0 * span + lo
        return x if self.mask is None else np.where(self.mask, x, z)
