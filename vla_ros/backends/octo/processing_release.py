"""Inputs and outputs of a released Octo model, as the reference prepares them.

images:  camera -> (H, W, 3) uint8 RGB -> (3, H', W') float32 in [-1, 1] at the tokenizer's size
window:  the last `window_size` frames per camera; at an episode's start the missing steps are padding
language: instruction -> T5 encoder output (L, 768), once per instruction (truncated to L tokens)
actions: normalised (H, A) -> the dataset's units: mean/std ("normal") or p01/p99 ("bounds"), only where
         the statistics' mask is True (the gripper stays raw), then cut to the dataset's action width
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

import numpy as np

from vla_ros.backends.base import BackendError
from vla_ros.core.images import resize_rgb

NORMALIZATIONS = ("normal", "bounds")
T5_HINT = (
    "download the t5-base tokenizer and encoder once, e.g. `huggingface-cli download google-t5/t5-base "
    "--local-dir <folder>` (config.json, model.safetensors, spiece.model / tokenizer.json), and name the folder "
    "in the octo settings' t5_folder"
)


def select_dataset(stats: dict, key: str | None, where: str) -> tuple[str, dict]:
    """(key, action statistics) of dataset `key`, or of the only dataset; BackendError listing the keys."""
    available = sorted(k for k, v in stats.items() if isinstance(v, dict) and "action" in v)
    if not available:
        raise BackendError(f"{where}: no dataset with 'action' statistics")
    if key is None:
        if len(available) > 1:
            raise BackendError(f"{where}: statistics of several datasets; set dataset_key to one of {available}")
        key = available[0]
    if key not in available:
        raise BackendError(f"{where}: dataset_key {key!r} not found; available: {available}")
    action = stats[key]["action"]
    missing = [k for k in ("mean", "std", "p01", "p99") if k not in action]
    if missing:
        raise BackendError(f"{where}: {key}.action lacks {missing}")
    return key, {k: np.asarray(v) for k, v in action.items() if k in ("mean", "std", "p01", "p99", "mask")}


def unnormalize_actions(actions: np.ndarray, stats: dict, kind: str) -> np.ndarray:
    """Normalised (..., A') -> (..., A) in the dataset's units, A = the statistics' width."""
    width = len(stats["mean"])
    mask = np.asarray(stats.get("mask", np.ones(width, bool)), bool)
    a = np.asarray(actions, np.float64)[..., :width]
    if kind == "normal":
        raw = a * stats["std"] + stats["mean"]
    elif kind == "bounds":
        raw = (a + 1) * (stats["p99"] - stats["p01"]) / 2 + stats["p01"]
    else:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")
    return np.where(mask, raw, a)


def scale_pixels(pixels):
    """uint8 pixels (array or tensor, any shape) -> float32 in [-1, 1]: the model's pixel scale."""
    return pixels.astype(np.float32) / 127.5 - 1.0 if isinstance(pixels, np.ndarray) else pixels.float() / 127.5 - 1.0


def image_input(rgb: np.ndarray, size: tuple[int, int], where: str, resize: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, h, w) float32 in [-1, 1]; BackendError naming `where` for anything else."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        raise BackendError(f"{where}: expected an (H, W, 3) uint8 RGB image, got {shape} {getattr(rgb, 'dtype', '')}")
    if rgb.shape[:2] != tuple(size):
        if not resize:
            raise BackendError(f"{where}: image is {rgb.shape[1]}x{rgb.shape[0]}, the model takes {size[1]}x{size[0]}")
        rgb = resize_rgb(rgb, size[0], size[1])
    return scale_pixels(rgb).transpose(2, 0, 1)


class History:
    """The last `size` observations' model images; `window()` pads the start of an episode."""

    def __init__(self, size: int):
        self.size = size
        self.frames: deque[dict[str, np.ndarray | None]] = deque(maxlen=size)

    def reset(self) -> None:
        self.frames.clear()

    def push(self, images: dict[str, np.ndarray | None]) -> None:
        """images: slot -> (3, h, w) float32, or None for a camera the observation lacks."""
        self.frames.append(images)

    def window(self, slots: dict[str, tuple[int, int]]) -> tuple[dict, dict, np.ndarray]:
        """(images slot -> (T, 3, h, w), valid slot -> (T,) bool, timestep_valid (T,) bool); padding steps
        and missing cameras hold the scaled zero image (-1)."""
        pad = self.size - len(self.frames)
        frames = [None] * pad + list(self.frames)
        images, valid = {}, {}
        for slot, (h, w) in slots.items():
            blank = np.full((3, h, w), -1.0, np.float32)
            got = [None if f is None else f.get(slot) for f in frames]
            images[slot] = np.stack([blank if g is None else g for g in got])
            valid[slot] = np.array([g is not None for g in got])
        return images, valid, np.array([f is not None for f in frames])


class T5TaskEncoder:
    """Instruction -> (L, D) T5 encoder states and the token count, cached per instruction (the encoder
    runs when the instruction changes, never per frame). Loads from a local folder only."""

    def __init__(self, folder: str | Path | None, max_length: int, device: str = "cpu"):
        import torch
        from transformers import AutoTokenizer, T5EncoderModel

        if folder is None or not Path(folder).is_dir():
            raise BackendError(f"octo: the T5 folder {folder} does not exist; {T5_HINT}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.encoder = T5EncoderModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as exc:
            raise BackendError(f"octo: cannot load T5 from {folder} ({exc}); {T5_HINT}") from exc
        self.torch, self.device, self.max_length = torch, device, max_length
        self.folder = Path(folder)
        self._cache: tuple[str, np.ndarray] | None = None
        self._warned = False
        self.encodings = 0  # how often the encoder ran (once per new instruction)

    def __call__(self, text: str) -> np.ndarray:
        if self._cache is not None and self._cache[0] == text:
            return self._cache[1]
        n_tokens = len(self.tokenizer(text).input_ids)
        if n_tokens > self.max_length and not self._warned:
            logging.getLogger(__name__).warning(
                "octo: instruction of %d tokens truncated to %d as in training: %r", n_tokens, self.max_length, text
            )
            self._warned = True
        batch = self.tokenizer(
            [text], max_length=self.max_length, padding="max_length", truncation=True, return_tensors="pt"
        ).to(self.device)
        with self.torch.inference_mode():
            states = self.encoder(**batch).last_hidden_state[0].float().cpu().numpy()
        self.encodings += 1
        self._cache = (text, states)
        return states
