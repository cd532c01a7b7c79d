"""Octo-design model configuration (sizes, cameras, action space), saved as `config.json`, and the
backend's run-time settings (`octo.yaml` layers, see backends/settings.py)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.backends.settings import SettingsBase
from vla_ros.core.robot_mapping import RobotMapping


@dataclass
class OctoConfig:
    # I/O
    camera_names: tuple[str, ...] = ("front", "wrist")
    image_size: int = 64  # square input, pixels
    joint_names: tuple[str, ...] = ()
    horizon: int = 8  # action chunk length
    dt_s: float = 0.1  # seconds between chunk points
    delta_mask: tuple[bool, ...] = ()  # per joint: predict relative to the current state (else absolute)
    # language
    vocab: tuple[str, ...] = ()  # word vocabulary; ids 0/1 are [pad]/[unk]
    max_tokens: int = 8
    text_layers: int = 1
    # transformer
    width: int = 128
    depth: int = 4
    num_heads: int = 4
    mlp_dim: int = 512
    stem_channels: tuple[int, ...] = (16, 32, 64, 128)  # stride-2 3x3 convs; image_size / 2**len patches per side
    coord_channels: bool = False  # stack x/y coordinate channels on the stem input (CoordConv)
    film: bool = False  # FiLM-condition the image stems on the pooled language embedding
    # diffusion head
    diffusion_steps: int = 20
    head_hidden: int = 256
    head_blocks: int = 3
    time_dim: int = 32
    dropout: float = 0.0
    diffusion_samples: int = 4  # noise draws per embedding in training (cheap: only the head reruns)
    extra: dict = field(default_factory=dict)  # training provenance etc.

    def __post_init__(self):
        for name in ("camera_names", "joint_names", "delta_mask", "vocab", "stem_channels"):
            setattr(self, name, tuple(getattr(self, name)))
        if not self.joint_names:
            raise ValueError("OctoConfig.joint_names must not be empty")
        if self.delta_mask and len(self.delta_mask) != len(self.joint_names):
            raise ValueError(f"delta_mask has {len(self.delta_mask)} entries for {len(self.joint_names)} joints")
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} not divisible by num_heads {self.num_heads}")
        if self.image_size % (2 ** len(self.stem_channels)):
            raise ValueError(f"image_size {self.image_size} not divisible by 2**{len(self.stem_channels)}")

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)

    @property
    def patches_per_image(self) -> int:
        return (self.image_size // 2 ** len(self.stem_channels)) ** 2

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> "OctoConfig":
        raw = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {unknown}")
        return cls(**raw)


@dataclass(frozen=True)
class OctoSettings(SettingsBase):
    """How the robot runs an Octo-design checkpoint. `cameras` / `joints` / `relative_joints` default
    to the checkpoint's own (its `camera_names`, `joint_names`, `delta_mask`)."""

    KEY_GROUPS = (("joints", "relative_joints"),)

    device: str = "cpu"  # torch device: cpu | cuda | cuda:N
    max_guidance: float = 5.0  # RTC guidance weight clip (beta) for guided inference
    cameras: dict[str, str] | None = None  # robot camera -> the model's camera slot
    joints: tuple[str, ...] | None = None  # robot joint of model dim i
    relative_joints: tuple[str, ...] | None = None  # joints predicted relative to the state
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        if self.max_guidance < 0:
            raise ValueError(f"{self.source}: max_guidance: must be >= 0, got {self.max_guidance}")

    def mapping(self, cfg: OctoConfig) -> RobotMapping:
        """The robot mapping: these settings over the checkpoint's own names."""
        default: dict[str, Any] = {
            "joints": list(cfg.joint_names),
            "cameras": {c: c for c in cfg.camera_names},
            "relative_joints": [j for j, rel in zip(cfg.joint_names, cfg.delta_mask) if rel],
        }
        for key in default:
            if getattr(self, key) is not None:
                default[key] = getattr(self, key)
        mapping = RobotMapping.from_dict(default, self.source)
        if len(mapping.joints) != cfg.action_dim:
            raise ValueError(
                f"{self.source}: joints: the model has {cfg.action_dim} action dims, got {len(mapping.joints)} joints"
            )
        if mapping.relative_mask.tolist() != list(cfg.delta_mask or [False] * cfg.action_dim):
            raise ValueError(
                f"{self.source}: relative_joints: the checkpoint was trained with delta_mask {list(cfg.delta_mask)}"
            )
        mapping.check_slots(cfg.camera_names)
        return mapping
