"""Input/output transforms of SmolVLA, as LeRobot 0.6.1's processor pipelines and `SmolVLAPolicy` do them.

images: camera -> (H, W, 3) uint8  ->  per mapped model camera (3, h, w) float32 in [-1, 1]: rgb / 255,
                                      torch bilinear (no antialias) to fit (w, h) = resize_imgs_with_padding,
                                      aspect kept, zeros padded on the LEFT and TOP (LeRobot's
                                      `vla_utils.resize_with_pad`, SmolVLA's convention), then x 2 - 1.
                                      Unmapped model cameras are left out (LeRobot leaves out missing
                                      cameras and masks empty ones: the same tokens reach the expert)
prompt: task + "\\n" (when the pipeline has its new-line step) -> the VLM tokenizer, called with the
                                      pipeline's tokenizer step arguments (max_length, truncation,
                                      padding, padding_side)
state:  (S,) the action space's state vector -> normalised (the pipeline's normaliser) -> zero-padded
                                      to max_state_dim (`pad_vector`)
chunk:  (H, max_action_dim) model <-> (H, A) model actions: the first A dims, unnormalised / normalised
Model actions <-> joint targets is the action space's step, shared by every backend (backends/action_output.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vla_ros.backends.normalization import Normalizer
from vla_ros.backends.pi0.processing import pad_last
from vla_ros.backends.smolvla.configuration import SmolVLAConfig
from vla_ros.backends.smolvla.settings import SmolVLASettings


def resize_with_pad_left_top(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1] -> (N, 3, height, width): bilinear to fit, aspect kept, zeros on the left/top."""
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image
    ratio = max(w / width, h / height)
    new_h, new_w = int(h / ratio), int(w / ratio)
    resized = F.interpolate(image, size=(new_h, new_w), mode="bilinear", align_corners=False)
    return F.pad(resized, (max(0, width - new_w), 0, max(0, height - new_h), 0), value=0.0)


def image_input(rgb: np.ndarray, width: int, height: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, height, width) float32 in [-1, 1] on `device`, as SmolVLA prepares images."""
    x = torch.as_tensor(np.ascontiguousarray(rgb), device=device).permute(2, 0, 1)[None].float().div(255.0)
    return resize_with_pad_left_top(x, width, height)[0] * 2.0 - 1.0


@dataclass(eq=False)
class SmolVLATokenizer:
    """The VLM tokenizer called as LeRobot's new-line and tokenizer processor steps call it."""

    tokenizer: Any  # a transformers tokenizer
    max_length: int = 48
    padding: str = "longest"
    padding_side: str = "right"
    truncation: bool = True
    newline: bool = True

    def __call__(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (L,) int64 and their valid mask (L,) bool."""
        text = prompt if not self.newline or prompt.endswith("\n") else prompt + "\n"
        out = self.tokenizer(
            [text],
            max_length=self.max_length,
            truncation=self.truncation,
            padding=self.padding,
            padding_side=self.padding_side,
            return_tensors="np",
        )
        return out["input_ids"][0].astype(np.int64), out["attention_mask"][0].astype(bool)


class SmolVLAProcessor:
    """stats: {"state"|"action": {stat: (>= D,)}}; norms: (state mode, action mode, eps) of the checkpoint."""

    def __init__(
        self,
        cfg: SmolVLAConfig,
        settings: SmolVLASettings,
        stats: dict[str, dict],
        state_norm: str,
        action_norm: str,
        eps: float,
    ):
        settings.check_cameras(cfg.real_cameras, cfg.cameras[len(cfg.real_cameras) :])
        self.cfg = cfg
        self.settings = settings
        self.raw_stats = stats
        self.modes = {"state": state_norm, "action": action_norm}
        self.eps = eps
        self._norms: dict[tuple[str, int], Normalizer] = {}
        # model cameras in the checkpoint's order, with their robot camera
        self.camera_map = tuple((c, settings.cameras[c]) for c in cfg.real_cameras if c in settings.cameras)
        if settings.action_space is None:  # joint positions: one state and action value per joint
            d = len(settings.joints)
            self.check_dims(d, d, f"the {d} joints {list(settings.joints)}")

    def _normalizer(self, feature: str, dims: int) -> Normalizer:
        key = (feature, dims)
        if key not in self._norms:
            self._norms[key] = Normalizer.from_stats(
                self.raw_stats[feature], self.modes[feature], "lerobot", self.eps, dims, f"{feature} statistics"
            )
        return self._norms[key]

    def check_dims(self, action_dim: int, state_dim: int, what: str) -> None:
        """ValueError unless `what` gives exactly the checkpoint's action and state widths (with statistics)."""
        cfg = self.cfg
        if (action_dim, state_dim) != (cfg.action_dim, cfg.state_dim):
            raise ValueError(
                f"{what} give {action_dim} action / {state_dim} state values; the checkpoint was trained on "
                f"{cfg.action_dim} / {cfg.state_dim} (config.json output_features.action / input_features."
                "observation.state)"
            )
        try:
            self._normalizer("state", state_dim)
            self._normalizer("action", action_dim)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from exc

    def images(self, images: dict[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """Robot camera images -> (C, 3, h, w) float32 in [-1, 1], the mapped model cameras in checkpoint order."""
        width, height = self.cfg.resize
        return torch.stack([image_input(images[robot], width, height, device) for _, robot in self.camera_map])

    def state_input(self, state: np.ndarray) -> np.ndarray:
        """(S,) state vector -> (max_state_dim,) float32: normalised, zero-padded."""
        normalized = self._normalizer("state", state.shape[-1]).normalize(state).astype(np.float32)
        return pad_last(normalized, self.cfg.max_state_dim)

    def actions_to_model(self, actions: np.ndarray) -> np.ndarray:
        """Model actions (H, A) -> model units (H, max_action_dim) float32."""
        normalized = self._normalizer("action", actions.shape[-1]).normalize(actions).astype(np.float32)
        return pad_last(normalized, self.cfg.max_action_dim)

    def model_to_actions(self, model_out: np.ndarray, action_dim: int) -> np.ndarray:
        """Model output (H, max_action_dim) -> the first `action_dim` values, unnormalised (H, A)."""
        return self._normalizer("action", action_dim).unnormalize(model_out[..., :action_dim].astype(np.float64))
