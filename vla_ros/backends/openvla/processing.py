"""Input/output transforms of the OpenVLA backend (the reference processor and `predict_action`).

instruction -> prompt "In: What action should the robot take to {instruction.lower()}?\\nOut:" ->
               token ids (BOS first) + the empty token 29871 if the prompt does not end with it
image (H, W, 3) uint8 -> optional centre crop (area scale) -> per tower: PIL resize to S x S
               (bicubic, antialiased), /255, (x - mean) / std -> (3 * towers, S, S) float32
action tokens (A,) -> bin index = clip(vocab_end - id - 1, 0, bins - 2) -> bin centre in [-1, 1]
               -> q01/q99 (or min/max) unnormalisation where the mask is true (A,)
actions (H, A) -> joint targets (H, D): absolute, or added to the current position
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vla_ros.backends.normalization import NEEDS, Normalizer
from vla_ros.backends.openvla.configuration import EMPTY_TOKEN_ID, ImageProcessorConfig

PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def prompt(instruction: str) -> str:
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


def with_empty_token(ids: list[int]) -> list[int]:
    """The reference appends token 29871 when the prompt's last token is not already it."""
    return list(ids) if ids and ids[-1] == EMPTY_TOKEN_ID else [*ids, EMPTY_TOKEN_ID]


# --- images ----------------------------------------------------------------------------------------


def center_crop(rgb: np.ndarray, area_scale: float) -> np.ndarray:
    """The centre of `rgb` (H, W, 3) keeping `area_scale` of its area (each side times sqrt(scale))."""
    h, w = rgb.shape[:2]
    side = np.sqrt(area_scale)
    ch, cw = max(1, round(h * side)), max(1, round(w * side))
    top, left = (h - ch) // 2, (w - cw) // 2
    return rgb[top : top + ch, left : left + cw]


def _resize(image: Image.Image, size: int, strategy: str, resample: Image.Resampling) -> Image.Image:
    """One tower's geometry: stretch (resize-naive), shorter side + centre crop (resize-crop), pad (letterbox)."""
    if strategy == "resize-naive":
        return image.resize((size, size), resample)
    w, h = image.size
    short, long = min(w, h), max(w, h)
    scaled = size, int(size * long / short)
    image = image.resize((scaled[0], scaled[1]) if w <= h else (scaled[1], scaled[0]), resample)
    w, h = image.size
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


def _letterbox(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    w, h = image.size
    side = max(w, h)
    pad_w, pad_h = int((side - w) / 2), int((side - h) / 2)
    out = Image.new("RGB", (w + 2 * pad_w, h + 2 * pad_h), fill)
    out.paste(image, (pad_w, pad_h))
    return out


def pixel_values(rgb: np.ndarray, cfg: ImageProcessorConfig, crop_scale: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> (3 * towers, S, S) float32, towers stacked along channels."""
    if crop_scale is not None:
        rgb = center_crop(rgb, crop_scale)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if cfg.resize_strategy == "letterbox":  # the reference fills with the last tower's mean
        image = _letterbox(image, tuple(int(v * 255) for v in cfg.means[-1]))
    out = []
    for size, mean, std, interp in zip(cfg.sizes, cfg.means, cfg.stds, cfg.interpolations):
        resized = _resize(image, size, cfg.resize_strategy, PIL_FILTERS[interp])
        x = np.asarray(resized, dtype=np.float32) / 255.0
        out.append(((x - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1))
    return np.concatenate(out, axis=0).astype(np.float32)


# --- actions ---------------------------------------------------------------------------------------


class ActionTokenizer:
    """Token id <-> normalised action in [-1, 1]: `bins` edges on [-1, 1], bins - 1 centres, ids
    counting down from `vocab_end` - 1 (Llama-2: 31999 is the lowest bin)."""

    def __init__(self, vocab_end: int, bins: int = 256):
        self.vocab_end = vocab_end
        self.edges = np.linspace(-1.0, 1.0, bins)
        self.centers = (self.edges[:-1] + self.edges[1:]) / 2.0

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """(..., A) normalised actions -> token ids (training's discretisation, clipped to [-1, 1])."""
        return self.vocab_end - np.digitize(np.clip(actions, -1.0, 1.0), self.edges)

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """(..., A) int ids -> (..., A) bin centres; ids outside the action range clip to the end bins."""
        index = np.clip(self.vocab_end - np.asarray(token_ids, dtype=np.int64) - 1, 0, len(self.centers) - 1)
        return self.centers[index]


def _normalizer(stats: dict, scheme: str, eps: float, clip: bool = False) -> Normalizer:
    """OpenVLA's bounds normaliser: `scheme` quantiles (q01/q99) or min_max, eps added to the range."""
    low = np.asarray(stats[NEEDS[scheme][0]], dtype=np.float64)
    mask = np.asarray(stats.get("mask", np.ones_like(low, dtype=bool)), dtype=bool)
    return Normalizer.from_stats(
        {**stats, "mask": mask}, scheme, "eps_added", eps, len(low), "OpenVLA statistics", clip
    )


def unnormalize(normalized: np.ndarray, stats: dict, scheme: str = "quantiles", eps: float = 0.0) -> np.ndarray:
    """(..., A) in [-1, 1] -> 0.5 (x + 1)(high - low + eps) + low where `mask` (default all) is true.

    scheme: "quantiles" (q01/q99, OpenVLA and OFT-LIBERO) or "min_max" (OFT-ALOHA).
    eps: OpenVLA-OFT adds 1e-8 to the range; OpenVLA adds nothing.
    """
    return _normalizer(stats, scheme, eps).unnormalize(normalized)


def normalize(x: np.ndarray, stats: dict, scheme: str = "quantiles") -> np.ndarray:
    """OFT's proprio input: 2 (x - low) / (high - low + 1e-8) - 1 where `mask`, then every dim clipped to [-1, 1]."""
    return _normalizer(stats, scheme, 1e-8, clip=True).normalize(x)
