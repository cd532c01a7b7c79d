"""Input/output transforms of the Octo-design backend, shared by inference and training.

images: camera -> (H, W, 3) uint8 RGB  ->  (3, S, S) float32 in [-1, 1]
state:  (D,) radians                   ->  normalised (D,)
chunk:  (H, D) absolute targets       <->  normalised (H, D), relative to the state where delta_mask
"""

from __future__ import annotations

import numpy as np

from vla_ros.backends.normalization import DatasetStatistics, to_absolute, to_delta
from vla_ros.backends.octo.configuration import OctoConfig
from vla_ros.core.images import resize_rgb


def scale_pixels(pixels):
    """uint8 pixels (array or tensor, any shape) -> float in [-1, 1]: the model's pixel scale."""
    return pixels.astype(np.float32) / 127.5 - 1.0 if isinstance(pixels, np.ndarray) else pixels.float() / 127.5 - 1.0


def image_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, size, size) float32 in [-1, 1]."""
    small = resize_rgb(rgb, size, size) if rgb.shape[:2] != (size, size) else rgb
    return scale_pixels(small).transpose(2, 0, 1)


class OctoProcessor:
    def __init__(self, cfg: OctoConfig, stats: DatasetStatistics):
        if stats.state.mean.shape != (cfg.action_dim,) or stats.action.mean.shape != (cfg.action_dim,):
            raise ValueError(
                f"dataset statistics are for {stats.state.mean.shape[0]} state / {stats.action.mean.shape[0]} action dims, "
                f"the model has {cfg.action_dim} joints {list(cfg.joint_names)}"
            )
        self.cfg = cfg
        self.stats = stats
        self.delta_mask = np.array(cfg.delta_mask or [False] * cfg.action_dim)

    def image_input(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (3, S, S) float32 in [-1, 1] at the model's image size."""
        return image_input(rgb, self.cfg.image_size)

    def state_input(self, q: np.ndarray) -> np.ndarray:
        return self.stats.state.normalize(q).astype(np.float32)

    def actions_to_targets(self, q: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Training labels: absolute targets (..., H, D) at state q -> normalised model targets."""
        return self.stats.action.normalize(to_delta(actions, q, self.delta_mask)).astype(np.float32)

    def targets_to_actions(self, q: np.ndarray, normalised: np.ndarray) -> np.ndarray:
        """Model output (H, D) -> absolute joint targets (H, D)."""
        return to_absolute(self.stats.action.unnormalize(normalised), q, self.delta_mask)
