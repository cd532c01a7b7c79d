"""Input/output transforms of the π₀ family, as the checkpoint's origin (openpi | LeRobot) does them.

images: camera -> (H, W, 3) uint8  ->  per slot (3, S, S) float32 in [-1, 1] (resize with pad:
                                        PIL bilinear for openpi, torch bilinear without antialias
                                        for LeRobot) + valid flag; a slot with no camera is -1, invalid
state:  (S,) the action space's state vector  ->  normalised; π₀: zero-padded to state_dim (the state
                                        token); π₀.5: discretised into the prompt (`prompt_state`)
chunk:  (H, action_dim) model    <->  (H, A) model actions: slice/pad, unnormalise/normalise
Model actions <-> joint targets (relative joints, EE deltas, ...) is the action space's step, shared by
every backend (backends/action_output.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vla_ros.backends.normalization import ORIGIN_CONVENTION, DatasetStatistics, Normalizer
from vla_ros.backends.pi0.configuration import Pi0Config
from vla_ros.backends.pi0.origin import CheckpointProfile, default_profile
from vla_ros.backends.pi0.settings import Pi0Settings


def fitted_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Content size (h, w) of a (height, width) image fitted into size x size, aspect kept (both origins' rule)."""
    ratio = max(width / size, height / size)
    return max(1, int(height / ratio)), max(1, int(width / ratio))


def resize_with_pad_pil(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8: PIL bilinear, centred in zeros (openpi-client's resize_with_pad)."""
    if rgb.shape[:2] == (size, size):
        return rgb
    h, w = fitted_size(*rgb.shape[:2], size)
    out = np.zeros((size, size, 3), np.uint8)
    top, left = max(0, int((size - h) / 2)), max(0, int((size - w) / 2))
    out[top : top + h, left : left + w] = np.asarray(
        Image.fromarray(np.ascontiguousarray(rgb)).resize((w, h), Image.BILINEAR)
    )
    return out


def resize_with_pad_torch(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) float32 in [0, 1]: torch bilinear without antialias on rgb / 255,
    clamped, centred in zeros (extra pixel of an odd margin at the bottom/right), as LeRobot does."""
    x = torch.tensor(rgb, dtype=torch.float32).div(255.0)  # one converting copy (frames may be read-only views)
    if rgb.shape[:2] == (size, size):
        return x.numpy()
    h, w = fitted_size(*rgb.shape[:2], size)
    x = F.interpolate(x.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    top, left = (size - h) // 2, (size - w) // 2
    x = F.pad(x, (left, size - w - left, top, size - h - top), value=0.0)
    return x[0].permute(1, 2, 0).numpy()


def image_input(rgb: np.ndarray, size: int, resize: str = "pil_bilinear") -> np.ndarray:
    """(H, W, 3) uint8 -> (3, size, size) float32 in [-1, 1], aspect kept, black padded, resized the origin's way."""
    if resize == "torch_bilinear":
        unit = resize_with_pad_torch(rgb, size)
        return (unit * 2.0 - 1.0).transpose(2, 0, 1)
    fitted = resize_with_pad_pil(rgb, size)
    return (fitted.astype(np.float32) / 255.0 * 2.0 - 1.0).transpose(2, 0, 1)


def pad_last(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad the last axis of x (..., D) to `width` (D <= width)."""
    if x.shape[-1] > width:
        raise ValueError(f"cannot pad {x.shape[-1]} dims to {width}")
    return np.concatenate([x, np.zeros((*x.shape[:-1], width - x.shape[-1]), x.dtype)], axis=-1)


def _raw(stats: DatasetStatistics | dict) -> dict[str, dict]:
    """{"state": {stat: array}, "action": {...}} from either statistics form."""
    if isinstance(stats, DatasetStatistics):
        return {"state": stats.state.to_json(), "action": stats.action.to_json()}
    return stats


class Pi0Processor:
    """stats: raw statistics {"state"|"action": {stat: (>= D,)}} or `DatasetStatistics` (mean/std);
    profile: the checkpoint origin's preprocessing (default: openpi's for cfg's model type)."""

    def __init__(
        self,
        cfg: Pi0Config,
        settings: Pi0Settings,
        stats: DatasetStatistics | dict,
        profile: CheckpointProfile | None = None,
    ):
        settings.check_slots(cfg.image_slots)
        self.cfg = cfg
        self.settings = settings
        self.profile = profile or default_profile(cfg)
        self.raw_stats = _raw(stats)
        self._norms: dict[tuple[str, int], Normalizer] = {}
        if settings.action_space is None:  # joint positions: one state and action value per joint
            d = len(settings.joints)
            self.check_dims(d, d, f"the {d} joints {list(settings.joints)}")
        self.slot_camera = dict(settings.cameras)

    def _normalizer(self, feature: str, dims: int) -> Normalizer:
        """The origin's normaliser of the first `dims` values of `feature` ('state' | 'action')."""
        key = (feature, dims)
        if key not in self._norms:
            mode = self.profile.state_norm if feature == "state" else self.profile.action_norm
            self._norms[key] = Normalizer.from_stats(
                self.raw_stats[feature],
                mode,
                ORIGIN_CONVENTION[self.profile.origin],
                self.profile.eps,
                dims,
                f"{feature} statistics",
            )
        return self._norms[key]

    def check_dims(self, action_dim: int, state_dim: int, what: str) -> None:
        """ValueError unless `action_dim` actions and `state_dim` states fit the model and its statistics."""
        if action_dim > self.cfg.action_dim or state_dim > self.cfg.state_dim:
            raise ValueError(
                f"{what} do not fit the model's {self.cfg.state_dim} state / {self.cfg.action_dim} action dims"
            )
        try:
            self._normalizer("state", state_dim)
            self._normalizer("action", action_dim)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from exc

    def images(self, images: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Camera images -> (C, 3, S, S) float32 and valid (C,) bool, in the model's slot order."""
        size = self.cfg.vision.image_size
        pixels = np.full((len(self.cfg.image_slots), 3, size, size), -1.0, dtype=np.float32)
        valid = np.zeros(len(self.cfg.image_slots), dtype=bool)
        for i, slot in enumerate(self.cfg.image_slots):
            camera = self.slot_camera.get(slot)
            if camera is not None:
                pixels[i] = image_input(images[camera], size, self.profile.resize)
                valid[i] = True
        return pixels, valid

    def state_input(self, state: np.ndarray) -> np.ndarray | None:
        """(S,) state vector -> (state_dim,) float32 for π₀'s state token; None for π₀.5 (no state token)."""
        if self.cfg.pi05:
            return None
        return pad_last(
            self._normalizer("state", state.shape[-1]).normalize(state).astype(np.float32), self.cfg.state_dim
        )

    def prompt_state(self, state: np.ndarray) -> np.ndarray | None:
        """(S,) state vector -> normalised (S,) float32 that π₀.5 writes into the prompt; None for π₀ and for a
        π₀.5 trained without it (the profile's `state_in_prompt`)."""
        if not (self.cfg.pi05 and self.profile.state_in_prompt):
            return None
        return self._normalizer("state", state.shape[-1]).normalize(state).astype(np.float32)

    def actions_to_model(self, actions: np.ndarray) -> np.ndarray:
        """Model actions (H, A) -> model units (H, action_dim) float32."""
        normalized = self._normalizer("action", actions.shape[-1]).normalize(actions).astype(np.float32)
        return pad_last(normalized, self.cfg.action_dim)

    def model_to_actions(self, model_out: np.ndarray, action_dim: int) -> np.ndarray:
        """Model output (H, action_dim) -> the first `action_dim` values, unnormalised (H, A)."""
        return self._normalizer("action", action_dim).unnormalize(model_out[..., :action_dim].astype(np.float64))
