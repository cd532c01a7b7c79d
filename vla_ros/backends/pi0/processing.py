"""Input/output transforms of the π₀ backend (openpi's transforms, in order).

images: camera -> (H, W, 3) uint8  ->  per π₀ slot (3, S, S) float32 in [-1, 1] (resize with pad)
                                        + valid flag; a slot with no camera is -1 (black), invalid
state:  (S,) the action space's state vector  ->  normalised, zero-padded to state_dim
chunk:  (H, action_dim) model    <->  (H, A) model actions: slice/pad, unnormalise/normalise
Model actions <-> joint targets (relative joints, EE deltas, ...) is the action space's step, shared by
every backend (backends/action_output.py).
"""

from __future__ import annotations

import numpy as np

from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.pi0.configuration import Pi0Config
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.core.images import resize_with_pad


def image_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, size, size) float32 in [-1, 1], aspect kept, zero (black) padded."""
    fitted = resize_with_pad(rgb, size, size)
    return (fitted.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def pad_last(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad the last axis of x (..., D) to `width` (D <= width)."""
    if x.shape[-1] > width:
        raise ValueError(f"cannot pad {x.shape[-1]} dims to {width}")
    return np.concatenate([x, np.zeros((*x.shape[:-1], width - x.shape[-1]), x.dtype)], axis=-1)


def _first(stats: FeatureStats, d: int) -> FeatureStats:
    return FeatureStats(stats.mean[:d], stats.std[:d], stats.mask[:d])


class Pi0Processor:
    def __init__(self, cfg: Pi0Config, settings: Pi0Settings, stats: DatasetStatistics):
        settings.check_slots(cfg.image_slots)
        self.cfg = cfg
        self.settings = settings
        self.stats = stats
        if settings.action_space is None:  # joint positions: one state and action value per joint
            d = len(settings.joints)
            self.check_dims(d, d, f"the {d} joints {list(settings.joints)}")
        self.slot_camera = {slot: cam for cam, slot in settings.cameras.items()}

    def check_dims(self, action_dim: int, state_dim: int, what: str) -> None:
        """ValueError unless `action_dim` actions and `state_dim` states fit the model and its statistics."""
        if action_dim > self.cfg.action_dim or state_dim > self.cfg.state_dim:
            raise ValueError(
                f"{what} do not fit the model's {self.cfg.state_dim} state / {self.cfg.action_dim} action dims"
            )
        short = [
            f"{name} has {s.mean.shape[0]}"
            for name, s, d in (("state", self.stats.state, state_dim), ("action", self.stats.action, action_dim))
            if s.mean.shape[0] < d
        ]
        if short:
            raise ValueError(f"normalization statistics too short for {what}: {', '.join(short)}")

    def images(self, images: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Camera images -> (C, 3, S, S) float32 and valid (C,) bool, in the model's slot order."""
        size = self.cfg.vision.image_size
        pixels = np.full((len(self.cfg.image_slots), 3, size, size), -1.0, dtype=np.float32)
        valid = np.zeros(len(self.cfg.image_slots), dtype=bool)
        for i, slot in enumerate(self.cfg.image_slots):
            camera = self.slot_camera.get(slot)
            if camera is not None:
                pixels[i] = image_input(images[camera], size)
                valid[i] = True
        return pixels, valid

    def state_input(self, state: np.ndarray) -> np.ndarray:
        """(S,) state vector -> (state_dim,) float32."""
        stats = _first(self.stats.state, state.shape[-1])
        return pad_last(stats.normalize(state).astype(np.float32), self.cfg.state_dim)

    def actions_to_model(self, actions: np.ndarray) -> np.ndarray:
        """Model actions (H, A) -> model units (H, action_dim) float32."""
        stats = _first(self.stats.action, actions.shape[-1])
        return pad_last(stats.normalize(actions).astype(np.float32), self.cfg.action_dim)

    def model_to_actions(self, model_out: np.ndarray, action_dim: int) -> np.ndarray:
        """Model output (H, action_dim) -> the first `action_dim` values, unnormalised (H, A)."""
        stats = _first(self.stats.action, action_dim)
        return stats.unnormalize(model_out[..., :action_dim].astype(np.float64))
