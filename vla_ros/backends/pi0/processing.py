"""Input/output transforms of the π₀ backend (openpi's transforms, in order).

images: camera -> (H, W, 3) uint8  ->  per π₀ slot (3, S, S) float32 in [-1, 1] (resize with pad)
                                        + valid flag; a slot with no camera is -1 (black), invalid
state:  (D,) radians               ->  normalised, zero-padded to state_dim
chunk:  (H, action_dim) model     <->  (H, D) absolute targets: slice/pad, unnormalise/normalise,
                                        delta -> absolute where configured (and back)
"""

from __future__ import annotations

import numpy as np

from vla_ros.backends.normalization import (
    DatasetStatistics,
    FeatureStats,
    to_absolute,
    to_delta,
)
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
        d = len(settings.joints)
        if d > min(cfg.state_dim, cfg.action_dim):
            raise ValueError(f"{d} joints do not fit the model's {cfg.state_dim} state / {cfg.action_dim} action dims")
        short = [f"{name} has {s.mean.shape[0]}" for name, s in (("state", stats.state), ("action", stats.action)) if s.mean.shape[0] < d]
        if short:
            raise ValueError(f"normalization statistics too short for the {d} joints {list(settings.joints)}: {', '.join(short)}")
        settings.check_slots(cfg.image_slots)
        self.cfg = cfg
        self.settings = settings
        self.state_stats = _first(stats.state, d)
        self.action_stats = _first(stats.action, d)
        self.delta_mask = np.array([j in settings.delta_joints for j in settings.joints])
        self.slot_camera = {slot: cam for cam, slot in settings.cameras.items()}

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

    def state_input(self, q: np.ndarray) -> np.ndarray:
        """(D,) joint positions -> (state_dim,) float32."""
        return pad_last(self.state_stats.normalize(q).astype(np.float32), self.cfg.state_dim)

    def actions_to_targets(self, q: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Absolute targets (H, D) at state q -> model units (H, action_dim) float32."""
        normalized = self.action_stats.normalize(to_delta(actions, q, self.delta_mask)).astype(np.float32)
        return pad_last(normalized, self.cfg.action_dim)

    def targets_to_actions(self, q: np.ndarray, model_out: np.ndarray) -> np.ndarray:
        """Model output (H, action_dim) -> absolute joint targets (H, D)."""
        d = len(self.settings.joints)
        return to_absolute(self.action_stats.unnormalize(model_out[..., :d].astype(np.float64)), q, self.delta_mask)
