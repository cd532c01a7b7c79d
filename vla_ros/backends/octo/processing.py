"""Input/output transforms of demo-style Octo checkpoints, shared by inference and training.

images: camera -> (H, W, 3) uint8 RGB  ->  (3, S, S) float32 in [-1, 1]
state:  (S,) the action space's state vector  ->  normalised (S,)
chunk:  (H, A) model actions (unnormalised)   <->  normalised (H, A)
Joint targets <-> model actions is the action space's step (backends/action_output.py), shared by all backends.
"""

from __future__ import annotations

import numpy as np

from vla_ros.backends.normalization import DatasetStatistics
from vla_ros.backends.octo.configuration import OctoConfig
from vla_ros.backends.octo.processing_release import image_input


class OctoProcessor:
    def __init__(self, cfg: OctoConfig, stats: DatasetStatistics):
        if stats.state.mean.shape != (cfg.state_dim,) or stats.action.mean.shape != (cfg.action_dim,):
            raise ValueError(
                f"dataset statistics are for {stats.state.mean.shape[0]} state / {stats.action.mean.shape[0]} action "
                "dims, "
                f"the model has {cfg.state_dim} / {cfg.action_dim}"
            )
        self.cfg = cfg
        self.stats = stats

    def image_input(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (3, S, S) float32 in [-1, 1] at the model's image size."""
        return image_input(rgb, (self.cfg.image_size,) * 2, "octo: camera")

    def state_input(self, state: np.ndarray) -> np.ndarray:
        """The state vector (..., S) -> normalised float32."""
        return self.stats.state.normalize(state).astype(np.float32)

    def actions_to_model(self, actions: np.ndarray) -> np.ndarray:
        """Model actions (..., H, A) -> normalised float32 (training labels, guidance targets)."""
        return self.stats.action.normalize(actions).astype(np.float32)

    def model_to_actions(self, normalised: np.ndarray) -> np.ndarray:
        """Model output (H, A) -> unnormalised model actions (H, A) (ActionOutput.to_chunk makes joint targets)."""
        return self.stats.action.unnormalize(np.asarray(normalised, dtype=np.float64))
