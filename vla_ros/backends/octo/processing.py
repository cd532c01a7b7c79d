"""Observation -> Octo model inputs and model outputs -> model actions, for every Octo checkpoint (the
backend and training share them; what differs between checkpoints is data: statistics, task encoder, sizes).

images:   camera -> (H, W, 3) uint8 RGB -> (3, h, w) float32 in [-1, 1] at the tokenizer's size
window:   the last `window_size` steps (images, the normalised state); at an episode's start the missing
          steps are padding, a camera the observation lacks is masked
task:     instruction -> word ids and their mask (demo-style checkpoints: the net's own word encoder) or
          T5 encoder states (L, 768), encoded once per instruction (truncated to L tokens)
actions:  normalised (H, A') <-> the dataset's units: mean/std ("mean_std") or p01/p99 ("quantiles"), only where
          the statistics' mask is True (e.g. the gripper stays raw), cut to the statistics' width A <= A'
Joint targets <-> model actions is the action space's step (backends/action_output.py), shared by all backends.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

import numpy as np
import torch

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import FeatureStats, Normalizer, choose_dataset
from vla_ros.backends.octo.text import WordTokenizer
from vla_ros.core.images import resize_rgb

NORMALIZATIONS = ("mean_std", "quantiles")  # of backends/normalization.py NORMALIZATION_MODES
T5_HINT = (
    "download the t5-base tokenizer and encoder once, e.g. `huggingface-cli download google-t5/t5-base "
    "--local-dir <folder>` (config.json, model.safetensors, spiece.model / tokenizer.json), and name the folder "
    "in the octo settings' t5_folder"
)


SINGLE_DATASET = "finetune"  # the key a fine-tune's one-dataset statistics file is known by


def select_dataset(stats: dict, key: str | None, where: str) -> tuple[str, dict]:
    """(key, action statistics) of dataset `key`, or of the only dataset; BackendError listing the keys.

    Released models keep one entry per dataset (`{bridge_dataset: {action: ...}, ...}`); Octo's
    `scripts/finetune.py` saves its one dataset's statistics at the top level (`{action: ..., proprio: ...}`),
    known here as SINGLE_DATASET."""
    if isinstance(stats.get("action"), dict) and "mean" in stats["action"]:
        stats = {SINGLE_DATASET: stats}
    available = sorted(k for k, v in stats.items() if isinstance(v, dict) and "action" in v)
    key = choose_dataset(available, key, "dataset_key", where)
    action = stats[key]["action"]
    missing = [k for k in ("mean", "std", "p01", "p99") if k not in action]
    if missing:
        raise BackendError(f"{where}: {key}.action lacks {missing}")
    return key, {k: np.asarray(v) for k, v in action.items() if k in ("mean", "std", "p01", "p99", "mask")}


def feature_statistics(stats: FeatureStats) -> dict:
    """A demo-style statistics file's action entry in the dataset-statistics form (its std carries the
    1e-6 that FeatureStats adds when it normalises)."""
    return {"mean": stats.mean, "std": stats.std + 1e-6, "mask": stats.mask}


def check_normalization(stats: dict, kind: str) -> None:
    """ValueError unless `kind` is one of NORMALIZATIONS and `stats` hold what it needs."""
    if kind not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")
    if kind == "quantiles" and not ("p01" in stats and "p99" in stats):
        raise ValueError("normalization quantiles needs p01 / p99 action statistics")


def action_normalizer(stats: dict, kind: str) -> Normalizer:
    """Octo's normaliser of the actions: mean/std or p01/p99, std and range floored at 1e-8, the mask's dims only."""
    check_normalization(stats, kind)
    named = (
        {"mean": stats["mean"], "std": stats["std"]}
        if kind == "mean_std"
        else {"q01": stats["p01"], "q99": stats["p99"]}
    )
    width = len(stats["mean"])
    mask = np.asarray(stats.get("mask", np.ones(width, bool)), bool)
    return Normalizer(kind, "eps_floor", 1e-8, {k: np.asarray(v, np.float64) for k, v in named.items()}, mask)


def normalize_actions(actions: np.ndarray, stats: dict, kind: str) -> np.ndarray:
    """Actions (..., A) in the dataset's units -> normalised float32 (..., A) (training labels, guidance)."""
    return action_normalizer(stats, kind).normalize(actions).astype(np.float32)


def unnormalize_actions(actions: np.ndarray, stats: dict, kind: str) -> np.ndarray:
    """Normalised (..., A') -> float64 (..., A) in the dataset's units, A = the statistics' width."""
    return action_normalizer(stats, kind).unnormalize(np.asarray(actions, np.float64)[..., : len(stats["mean"])])


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
    """The last `size` steps' model inputs (name -> array, None = absent); `window()` pads an episode's start."""

    def __init__(self, size: int):
        self.size = size
        self.frames: deque[dict[str, np.ndarray | None]] = deque(maxlen=size)

    def reset(self) -> None:
        self.frames.clear()

    def push(self, step: dict[str, np.ndarray | None]) -> None:
        """step: image slot -> (3, h, w) float32 or None (a camera the observation lacks); state -> (S,)."""
        self.frames.append(step)

    def window(self, blanks: dict[str, np.ndarray]) -> tuple[dict, dict, np.ndarray]:
        """(name -> (T, ...) stacked, name -> (T,) bool present, timestep_valid (T,) bool) for the names of
        `blanks`; padding steps and absent entries hold the name's blank (images: the scaled zero image, -1)."""
        frames = [None] * (self.size - len(self.frames)) + list(self.frames)
        stacked, present = {}, {}
        for name, blank in blanks.items():
            got = [None if f is None else f.get(name) for f in frames]
            stacked[name] = np.stack([blank if g is None else g for g in got])
            present[name] = np.array([g is not None for g in got])
        return stacked, present, np.array([f is not None for f in frames])


class T5TaskEncoder:
    """Instruction -> (L, D) T5 encoder states and the token count, cached per instruction (the encoder
    runs when the instruction changes, never per frame). Loads from a local folder only."""

    def __init__(self, folder: str | Path | None, max_length: int, device: str = "cpu"):
        from transformers import AutoTokenizer, T5EncoderModel

        if folder is None or not Path(folder).is_dir():
            raise BackendError(f"octo: the T5 folder {folder} does not exist; {T5_HINT}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.encoder = T5EncoderModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as exc:
            raise BackendError(f"octo: cannot load T5 from {folder} ({exc}); {T5_HINT}") from exc
        self.device, self.max_length = device, max_length
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
        with torch.inference_mode():
            states = self.encoder(**batch).last_hidden_state[0].float().cpu().numpy()
        self.encodings += 1
        self._cache = (text, states)
        return states


def task_input(text: str, encoder: WordTokenizer | T5TaskEncoder | None, shape: tuple[int, int], where: str) -> dict:
    """One observation's language inputs (no batch axis): word ids `language_ids` (L,) int64 and their mask
    `language_valid` (L,) bool for a word encoder; T5 states `language` (L, D) float32 and one flag
    `language_valid` () bool (False: no instruction, zero states) otherwise. shape: (L, D) of the states."""
    if isinstance(encoder, WordTokenizer):
        ids, valid = encoder(text)
        return {"language_ids": ids, "language_valid": valid}
    text = text.strip()
    if text and encoder is None:
        raise BackendError(f"{where}: t5_folder: a language task needs the T5 encoder folder")
    states = encoder(text) if text else np.zeros(shape)
    return {"language": np.asarray(states, np.float32), "language_valid": np.array(bool(text))}


def collate(items: list[dict], device: torch.device) -> dict:
    """Per-observation model inputs (NumPy, no batch axis; nested per image slot) -> OctoNet.forward's keyword
    arguments (B, ...) on `device`. A goal image that some observations lack is the scaled zero image (-1)."""
    out = {}
    for key, first in items[0].items():
        if isinstance(first, dict):
            names = dict.fromkeys(n for item in items for n in item[key])
            out[key] = {}
            for name in names:
                like = next(item[key][name] for item in items if name in item[key])
                rows = [item[key].get(name, np.full_like(like, -1.0)) for item in items]
                out[key][name] = torch.from_numpy(np.stack(rows)).to(device)
        else:
            out[key] = torch.from_numpy(np.stack([item[key] for item in items])).to(device)
    return out
