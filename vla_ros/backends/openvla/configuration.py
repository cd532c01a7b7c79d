"""OpenVLA configuration: the model (`config.json`), its image processor (`preprocessor_config.json`)
and our robot mapping (`openvla.yaml`).

`OpenVLAConfig` reads the fields of a Prismatic / OpenVLA `config.json` that shape the model:
`timm_model_ids`, `image_sizes`, `use_fused_vision_backbone`, `text_config` (a Llama config; fields
it leaves out take transformers' `LlamaConfig` defaults, e.g. `rms_norm_eps` 1e-6),
`pad_to_multiple_of`, `n_action_bins`, `norm_stats`. Vision towers are known by their timm id;
a checkpoint of other towers can describe them in an extra `vision_towers` list (`VitSpec` fields).

`OpenVLASettings` says how the robot talks to the model: the camera(s), the decoding options,
OpenVLA-OFT's chunk settings (the authors keep them in code constants, not in the checkpoint:
LIBERO chunk 8 / q01-q99 quantiles, ALOHA chunk 25 / min-max bounds), and the checkpoint's action space
(an `action_space` block, e.g. `{preset: bridge_ee_delta}`; without one, action dimension i drives
`joints[i]`, as an absolute target or, for `relative_joints`, added to the joint's current position).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.backends.blocks.vit import DINOV2_REG4, SIGLIP, VitSpec
from vla_ros.backends.normalization import check_normalization
from vla_ros.backends.settings import DTYPES, SettingsBase, check_choice, check_joints

# timm ids of the towers OpenVLA checkpoints use -> their flags (timm's model definitions)
TIMM_TOWERS = {
    "vit_large_patch14_reg4_dinov2.lvd142m": VitSpec(
        embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096, **DINOV2_REG4
    ),
    "vit_so400m_patch14_siglip_224": VitSpec(embed_dim=1152, depth=27, num_heads=16, mlp_dim=4304, **SIGLIP),
}
TIMM_TOWERS["vit_so400m_patch14_siglip_384"] = TIMM_TOWERS["vit_so400m_patch14_siglip_224"]

# the published openvla/openvla-7b config.json, less its norm_stats
OPENVLA_7B = {
    "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
    "image_sizes": [224, 224],
    "use_fused_vision_backbone": True,
    "image_resize_strategy": "resize-naive",
    "text_config": {"model_type": "llama", "pad_token_id": 32000, "vocab_size": 32064},
    "pad_to_multiple_of": 64,
    "n_action_bins": 256,
    "pad_token_id": 32000,
}
EMPTY_TOKEN_ID = 29871  # Llama-2's "▁" piece, appended after "Out:" as in training
RESIZE_STRATEGIES = ("resize-naive", "resize-crop", "letterbox")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


@dataclass(frozen=True)
class OpenVLAConfig:
    towers: tuple[VitSpec, ...]  # 1 or 2 (fused: channels 0:3 -> towers[0], 3:6 -> towers[1])
    text_config: dict  # LlamaConfig keyword arguments
    timm_model_ids: tuple[str, ...] = ()
    pad_to_multiple_of: int = 64  # vocab padding; action tokens end at text vocab - this
    n_action_bins: int = 256
    norm_stats: dict = field(default_factory=dict, compare=False)  # dataset -> {"action": {...}, "proprio": {...}}

    def __post_init__(self):
        object.__setattr__(self, "towers", tuple(self.towers))
        if len(self.towers) not in (1, 2):
            raise ValueError(f"needs 1 or 2 vision towers, got {len(self.towers)}")
        grids = {t.num_patches for t in self.towers}
        if len(grids) != 1:
            raise ValueError(f"fused towers must give the same number of patches, got {sorted(grids)}")
        if self.n_action_bins < 2:
            raise ValueError(f"n_action_bins must be >= 2, got {self.n_action_bins}")
        if self.vocab_size - self.pad_to_multiple_of < self.n_action_bins:
            raise ValueError(
                f"text_config.vocab_size {self.vocab_size} leaves no room for {self.n_action_bins} action bins"
            )

    @property
    def fused(self) -> bool:
        return len(self.towers) == 2

    @property
    def vision_dim(self) -> int:
        return sum(t.embed_dim for t in self.towers)

    @property
    def num_patches(self) -> int:
        return self.towers[0].num_patches

    @property
    def vocab_size(self) -> int:
        return int(self.text_config.get("vocab_size", 32000))

    @property
    def action_vocab_end(self) -> int:
        """Token ids below this and above it minus n_action_bins are action bins (32000 for Llama-2)."""
        return self.vocab_size - self.pad_to_multiple_of

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.get("hidden_size", 4096))

    @classmethod
    def from_json(cls, raw: Any, where: str = "config.json") -> OpenVLAConfig:
        """ValueError naming `where` and the key on a bad or missing value."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        missing = [k for k in ("timm_model_ids", "image_sizes", "text_config") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing keys {missing} (an OpenVLA / Prismatic config.json has them)")
        ids, sizes = raw["timm_model_ids"], raw["image_sizes"]
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids) and ids):
            raise ValueError(f"{where}: timm_model_ids must be a list of timm model names, got {ids!r}")
        if not (
            isinstance(sizes, list)
            and len(sizes) == len(ids)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)
        ):
            raise ValueError(f"{where}: image_sizes must list one integer size per timm_model_ids entry, got {sizes!r}")
        fused = raw.get("use_fused_vision_backbone", len(ids) == 2)
        if not isinstance(fused, bool) or fused != (len(ids) == 2):
            raise ValueError(f"{where}: use_fused_vision_backbone {fused!r} does not match {len(ids)} timm_model_ids")
        towers = _towers(raw, ids, sizes, where)
        text = raw["text_config"]
        if not isinstance(text, dict):
            raise ValueError(f"{where}: text_config must be an object, got {text!r}")
        kind = text.get("model_type", "llama")
        if kind != "llama":
            raise ValueError(f"{where}: text_config.model_type {kind!r} is not supported (llama)")
        stats = raw.get("norm_stats") or {}
        if not isinstance(stats, dict):
            raise ValueError(f"{where}: norm_stats must be an object of datasets, got {type(stats).__name__}")
        kw = {k: _int(raw, k, where) for k in ("pad_to_multiple_of", "n_action_bins") if k in raw}
        try:
            return cls(towers=towers, text_config=dict(text), timm_model_ids=tuple(ids), norm_stats=stats, **kw)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> OpenVLAConfig:
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_json(raw, str(path))


def _int(raw: dict, key: str, where: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _towers(raw: dict, ids: list[str], sizes: list[int], where: str) -> tuple[VitSpec, ...]:
    explicit = raw.get("vision_towers")
    if explicit is not None:
        if not (
            isinstance(explicit, list) and len(explicit) == len(ids) and all(isinstance(t, dict) for t in explicit)
        ):
            raise ValueError(f"{where}: vision_towers must list one object per timm_model_ids entry, got {explicit!r}")
        names = {f.name for f in dataclasses.fields(VitSpec)}
        unknown = sorted({k for t in explicit for k in t} - names)
        if unknown:
            raise ValueError(f"{where}: vision_towers has unknown keys {unknown} (known: {sorted(names)})")
        try:
            return tuple(VitSpec(**{**t, "img_size": s}) for t, s in zip(explicit, sizes))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: vision_towers: {exc}") from exc
    unknown = [i for i in ids if i not in TIMM_TOWERS]
    if unknown:
        raise ValueError(
            f"{where}: timm_model_ids {unknown} are not known towers (known: {sorted(TIMM_TOWERS)}); "
            "describe them in 'vision_towers'"
        )
    return tuple(dataclasses.replace(TIMM_TOWERS[i], img_size=s) for i, s in zip(ids, sizes))


# --- the checkpoint's image processor ----------------------------------------------------------


@dataclass(frozen=True)
class ImageProcessorConfig:
    """`preprocessor_config.json` of a Prismatic checkpoint: per tower size, interpolation, mean, std."""

    sizes: tuple[int, ...]  # square output per tower, pixels
    means: tuple[tuple[float, float, float], ...]
    stds: tuple[tuple[float, float, float], ...]
    interpolations: tuple[str, ...]
    resize_strategy: str = "resize-naive"

    def __post_init__(self):
        n = len(self.sizes)
        if not (len(self.means) == len(self.stds) == len(self.interpolations) == n) or n not in (1, 2):
            raise ValueError(
                "one size/mean/std/interpolation per tower, "
                f"got {n}/{len(self.means)}/{len(self.stds)}/{len(self.interpolations)}"
            )
        if self.resize_strategy not in RESIZE_STRATEGIES:
            raise ValueError(f"image_resize_strategy {self.resize_strategy!r} is not one of {list(RESIZE_STRATEGIES)}")
        bad = [i for i in self.interpolations if i not in INTERPOLATIONS]
        if bad:
            raise ValueError(f"interpolations {bad} are not supported (known: {list(INTERPOLATIONS)})")

    @classmethod
    def from_json(cls, raw: Any, where: str) -> ImageProcessorConfig:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        missing = [k for k in ("input_sizes", "means", "stds") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing keys {missing}")
        try:
            sizes = tuple(int(s[-1]) for s in raw["input_sizes"])
            means = tuple(tuple(float(v) for v in m) for m in raw["means"])
            stds = tuple(tuple(float(v) for v in s) for s in raw["stds"])
            interpolations = tuple(raw.get("interpolations") or ["bicubic"] * len(sizes))
            return cls(sizes, means, stds, interpolations, raw.get("image_resize_strategy", "resize-naive"))
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"{where}: {exc}") from exc

    def to_json(self) -> dict:
        return {
            "image_processor_type": "PrismaticImageProcessor",
            "processor_class": "PrismaticProcessor",
            "image_resize_strategy": self.resize_strategy,
            "use_fused_vision_backbone": len(self.sizes) == 2,
            "input_sizes": [[3, s, s] for s in self.sizes],
            "interpolations": list(self.interpolations),
            "means": [list(m) for m in self.means],
            "stds": [list(s) for s in self.stds],
        }


# --- robot mapping -------------------------------------------------------------------------------

ATTENTION = ("sdpa", "eager")
NORMALIZATION = ("quantiles", "min_max")  # backends/normalization.py NORMALIZATION_MODES


@dataclass(frozen=True)
class OpenVLASettings(SettingsBase):
    KEY_GROUPS = (("joints", "relative_joints", "proprio_joints"),)

    joints: tuple[str, ...] = ()  # robot joints the actions drive (empty: the robot config's joints)

    # model camera -> robot camera, in the model's image order: the first is the third-person image; OFT reads
    # further (wrist) images in the order given. None: {primary: the robot's first camera}
    cameras: dict[str, str] | None = None
    relative_joints: tuple[str, ...] = ()  # actions added to the current position; others absolute
    unnorm_key: str | None = None  # dataset statistics; required when the checkpoint has several
    dt_s: float = 0.2  # seconds until the 1-point chunk's target (the rate the checkpoint was trained at)
    center_crop_scale: float | None = None  # 0.9 for models trained with crop augmentation (area kept)
    checkpoint: str | None = None  # default checkpoint folder (absolute or relative to the package root)
    device: str = "cpu"  # torch device: cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | bfloat16 (bfloat16 on GPU)
    attention: str = "sdpa"  # Llama attention kernel: sdpa | eager
    static_cache: bool = False  # preallocated KV cache (fixed shapes for CUDA graphs / torch.compile)
    oft: bool = False  # OpenVLA-OFT: one parallel pass + L1 regression head (`action_head--*.pt`)
    chunk_size: int = 8  # OFT actions per chunk (LIBERO 8, ALOHA 25); chunk points are dt_s apart
    normalization: str = "quantiles"  # OFT action/proprio bounds: quantiles (q01/q99) | min_max
    proprio_joints: tuple[str, ...] = ()  # OFT: joints fed to the proprio projector (empty: the action space's state)
    action_space: dict | None = None  # the checkpoint's action space (preset + overrides); None: joint positions
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "joints", tuple(self.joints))
        for name in ("relative_joints", "proprio_joints"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        where = self.source
        if self.joints:
            check_joints(where, self.joints, self.relative_joints, "relative_joints")
        if not self.dt_s > 0:
            raise ValueError(f"{where}: dt_s: must be > 0, got {self.dt_s}")
        if self.center_crop_scale is not None and not 0 < self.center_crop_scale <= 1:
            raise ValueError(f"{where}: center_crop_scale: must be in (0, 1], got {self.center_crop_scale}")
        check_choice(where, "dtype", self.dtype, DTYPES)
        check_choice(where, "attention", self.attention, ATTENTION)
        if self.chunk_size < 1:
            raise ValueError(f"{where}: chunk_size: must be >= 1, got {self.chunk_size}")
        check_normalization(where, self.normalization, NORMALIZATION)
        if self.cameras is not None and not self.cameras:
            raise ValueError(f"{where}: cameras: map at least the model's first image to a robot camera")
        if not self.oft and ((self.cameras and len(self.cameras) > 1) or self.proprio_joints):
            raise ValueError(
                f"{where}: cameras beyond the first / proprio_joints need oft: true (OpenVLA reads one image, no state)"
            )

    @property
    def robot_cameras(self) -> tuple[str, ...]:
        """The robot cameras in the model's image order (the settings' cameras must be set)."""
        return tuple(self.cameras.values())
