"""Demo-style Octo checkpoint configuration (sizes, cameras, action space; `OctoConfig.net_config` gives the
one implementation's options), saved as `config.json`; the released models' `OctoNetConfig`; and the
backend's run-time settings (`octo.yaml` layers, see backends/settings.py)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.backends.normalization import check_normalization
from vla_ros.backends.settings import OVERLAP_ENDS, SettingsBase, check_choice, default_cameras
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
    # the action space (backends/action_output.py): {} = joint positions of joint_names per delta_mask;
    # else an `action_space` block (preset + overrides, or groups) whose actions are action_dim wide
    action_space: dict = field(default_factory=dict)
    action_dim: int = 0  # values per chunk point (0: one per joint)
    state_dim: int = 0  # proprio values (0: one per joint)
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
        if self.action_space and any(self.delta_mask):
            raise ValueError("delta_mask: the action space says what is relative; leave delta_mask empty")
        self.action_dim = self.action_dim or len(self.joint_names)
        self.state_dim = self.state_dim or len(self.joint_names)
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} not divisible by num_heads {self.num_heads}")
        if self.image_size % (2 ** len(self.stem_channels)):
            raise ValueError(f"image_size {self.image_size} not divisible by 2**{len(self.stem_channels)}")

    @property
    def patches_per_image(self) -> int:
        return (self.image_size // 2 ** len(self.stem_channels)) ** 2

    def net_config(self) -> "OctoNetConfig":
        """This checkpoint as options of the one Octo implementation (README: the demo model's options).

        One window step, no goal images, a 1x1 patch conv to `width` (its projection then the identity),
        GroupNorm groups min(32, channels / 4), the word encoder, one proprio token, the task tokens only
        in the prefix, time features of k / diffusion_steps, head LayerNorm eps 1e-5, clipping of x0."""
        images = tuple(
            ImageGroupConfig(
                name=c, image_size=(self.image_size, self.image_size), goal=False, features=self.stem_channels,
                num_features=self.width, use_film=self.film, coord_channels=self.coord_channels,
                norm_groups=tuple(min(32, f // 4) for f in self.stem_channels),
            )
            for c in self.camera_names
        )  # fmt: skip
        return OctoNetConfig(
            images=images, language_encoder="words", vocab=self.vocab, text_layers=self.text_layers,
            language_dim=self.width, language_tokens=self.max_tokens, repeat_task_tokens=False,
            width=self.width, depth=self.depth, num_heads=self.num_heads, mlp_dim=self.mlp_dim,
            max_horizon=1, window_size=1, readout_tokens=1, action_horizon=self.horizon, action_dim=self.action_dim,
            proprio_dim=self.state_dim, time_dim=self.time_dim, head_hidden=self.head_hidden,
            head_blocks=self.head_blocks, diffusion_steps=self.diffusion_steps, action_space=dict(self.action_space),
            time_fraction=True, head_eps=1e-5, clip_x0=True, n_diffusion_samples=self.diffusion_samples,
            dropout_rate=self.dropout,
        )  # fmt: skip

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
    """How the robot runs an Octo checkpoint (either kind). `cameras` / `joints` / `relative_joints` default
    to the checkpoint's own (its image slots, a demo-style config's `joint_names` and `delta_mask`; a released
    model names no joints: set them)."""

    KEY_GROUPS = (("joints", "relative_joints"),)

    device: str = "cpu"  # torch device: cpu | cuda | cuda:N
    max_guidance: float = 5.0  # RTC guidance weight clip (beta) for guided inference
    guidance_overlap: str = "plan"  # guided: the soft mask decays to 0 at the running plan's end (RTC) | chunk's end
    cameras: dict[str, str] | None = None  # the model's camera slot -> robot camera
    joints: tuple[str, ...] | None = None  # robot joint of model dim i
    relative_joints: tuple[str, ...] | None = None  # joints predicted relative to the state
    action_space: dict | None = None  # the checkpoint's action space, over its config.json's (None: config.json's)
    t5_folder: str | None = None  # released models: local t5-base folder (tokenizer + encoder) for language tasks
    dataset_key: str | None = None  # dataset_statistics.json entry (e.g. bridge_dataset); needed when several
    normalization: str = "mean_std"  # action normalisation the model was trained with: mean_std | quantiles (p01/p99)
    goal_image: str | None = None  # image file: a goal-image task (models with goal-image slots)
    goal_camera: str | None = None  # observation image (e.g. fed by a goal topic) used as the goal when present
    window_size: int | None = None  # observation history (None: the model's)
    dt_s: float | None = None  # seconds between chunk points (None: the checkpoint's; released: 0.2, Bridge's 5 Hz)
    resize_images: bool = True  # resize camera frames to the model's size (False: a wrong size is an error)
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        if self.max_guidance < 0:
            raise ValueError(f"{self.source}: max_guidance: must be >= 0, got {self.max_guidance}")
        check_choice(self.source, "guidance_overlap", self.guidance_overlap, OVERLAP_ENDS)
        check_normalization(self.source, self.normalization, ("mean_std", "quantiles"))
        if self.window_size is not None and self.window_size < 1:
            raise ValueError(f"{self.source}: window_size: must be >= 1, got {self.window_size}")
        if self.dt_s is not None and self.dt_s <= 0:
            raise ValueError(f"{self.source}: dt_s: must be > 0, got {self.dt_s}")

    def mapping(
        self,
        joints: tuple[str, ...],
        slots: tuple[str, ...],
        delta_mask: tuple[bool, ...] = (),
        action_dim=None,
        robot_joints: tuple[str, ...] = (),
        robot_cameras: tuple[str, ...] = (),
    ) -> RobotMapping:
        """The robot mapping: these settings over the checkpoint's own joints (model order; empty: the robot
        config's `robot_joints`), image slots (default: settings.default_cameras onto `robot_cameras`, else the
        robot camera of each slot's name) and delta_mask. action_dim: the
        width of a joint-position model to check the joints against (None: an action space maps the joints)."""
        default: dict[str, Any] = {
            "joints": list(joints) or list(robot_joints),
            "cameras": default_cameras(slots, robot_cameras) if robot_cameras else {s: s for s in slots},
            "relative_joints": [j for j, rel in zip(joints, delta_mask) if rel],
        }
        for key in default:
            if getattr(self, key) is not None:
                default[key] = getattr(self, key)
        if not default["joints"]:
            raise ValueError(
                f"{self.source}: joints: the checkpoint names none and there is no robot config: name the robot joints "
                "the chunk drives (model order)"
            )
        mapping = RobotMapping.from_dict(default, self.source)
        mapping.check_slots(slots)
        if action_dim is None:
            return mapping
        if len(mapping.joints) != action_dim:
            raise ValueError(
                f"{self.source}: joints: the model has {action_dim} action dims, got {len(mapping.joints)} joints"
            )
        if mapping.relative_mask.tolist() != list(delta_mask or [False] * action_dim):
            raise ValueError(
                f"{self.source}: relative_joints: the checkpoint was trained with delta_mask {list(delta_mask)}"
            )
        return mapping


@dataclass
class ImageGroupConfig:
    """One image tokenizer of a released Octo model (SmallStem: weight-standardised stride-2 convs,
    GroupNorm, ReLU, then a patch conv): observation tokens of group `obs_<name>`."""

    name: str  # tokenizer name, e.g. "primary"; its image key is "image_<name>"
    image_size: tuple[int, int] = (256, 256)  # (H, W) pixels
    goal: bool = True  # the task's goal image of the same key is stacked on the channels
    features: tuple[int, ...] = (32, 96, 192, 384)  # conv channels, 3x3 stride 2 each
    num_features: int = 512  # patch-conv output width
    patch_size: int = 16  # pixels per token side; the patch conv is patch_size // 16 wide
    use_film: bool = False  # FiLM after each conv's GroupNorm, conditioned on the pooled language states
    coord_channels: bool = False  # x/y pixel coordinates in [-1, 1] stacked on the input channels (CoordConv)
    norm_groups: tuple[int, ...] = ()  # GroupNorm groups per conv (empty: 32 each, the reference)

    def __post_init__(self):
        self.image_size, self.features = tuple(self.image_size), tuple(self.features)
        self.norm_groups = tuple(self.norm_groups)
        side = 2 ** len(self.features) * (self.patch_size // 16)
        if self.patch_size < 16 or any(s % side for s in self.image_size):
            raise ValueError(
                f"image tokenizer {self.name}: image_size {list(self.image_size)} must be a multiple of {side} "
                f"(patch_size {self.patch_size})"
            )
        if self.norm_groups and len(self.norm_groups) != len(self.features):
            raise ValueError(
                f"image tokenizer {self.name}: norm_groups {list(self.norm_groups)} needs one entry per feature "
                f"{list(self.features)}"
            )
        if any(f % g for f, g in zip(self.features, self.groups)):
            raise ValueError(
                f"image tokenizer {self.name}: features {list(self.features)} must be multiples of the GroupNorm "
                f"groups {list(self.groups)}"
            )

    @property
    def groups(self) -> tuple[int, ...]:
        """GroupNorm groups of each conv."""
        return self.norm_groups or (32,) * len(self.features)

    @property
    def in_channels(self) -> int:
        """RGB, a stacked goal's RGB, coordinate channels."""
        return 3 * (2 if self.goal else 1) + (2 if self.coord_channels else 0)

    @property
    def n_tokens(self) -> int:
        side = 2 ** len(self.features) * (self.patch_size // 16)
        return (self.image_size[0] // side) * (self.image_size[1] // side)


@dataclass
class OctoNetConfig:
    """A released Octo model (octo-small-1.5 / octo-base-1.5 and fine-tunes), as converted from its
    `config.json`; saved as our checkpoint's `config.json` with `"format": "octo-release"`."""

    images: tuple[ImageGroupConfig, ...]
    language: bool = True  # a language task tokenizer (T5 encoder outputs, projected)
    language_dim: int = 768  # T5-base width
    language_tokens: int = 16  # tokenizer max_length
    t5_name: str = "t5-base"
    repeat_task_tokens: bool = True  # the task tokens repeat in every timestep (1.5 models)
    use_correct_attention: bool = True  # False: the December-2023 models' group boundaries
    width: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_dim: int = 1536
    max_horizon: int = 10  # timesteps of the learned positional embeddings
    window_size: int = 2  # observation history the model was trained with
    readout_tokens: int = 1  # tokens of the action readout group
    action_horizon: int = 4
    action_dim: int = 7
    max_action: float = 5.0  # samples are clipped to +/- this at every diffusion step
    time_dim: int = 32
    head_hidden: int = 256
    head_blocks: int = 3
    head_layer_norm: bool = True
    diffusion_steps: int = 20
    action_space: dict = field(default_factory=dict)  # an `action_space` block; {} = the settings' one
    # options of the bundled demo model (models/demo); the defaults are the released models' behaviour
    language_encoder: str = "t5"  # t5: T5 encoder states are inputs | words: a word-vocabulary encoder in the net
    vocab: tuple[str, ...] = ()  # words: the vocabulary; ids 0/1 are [pad]/[unk]
    text_layers: int = 1  # words: encoder layers (width language_dim, the transformer's heads and mlp_dim)
    proprio_dim: int = 0  # > 0: one observation token per timestep from the normalised state (group obs_proprio)
    time_fraction: bool = False  # the head's time features take k / diffusion_steps (else the step k)
    head_eps: float = 1e-6  # LayerNorm epsilon of the head's MLP-ResNet blocks (Flax: 1e-6)
    clip_x0: bool = False  # sampler: clip the predicted x0 and sample the posterior (else clip x_k, reference)
    n_diffusion_samples: int = 1  # training: noise draws per embedding
    dropout_rate: float = 0.0  # training: the head's dropout
    format: str = "octo-release"

    def __post_init__(self):
        self.images = tuple(i if isinstance(i, ImageGroupConfig) else ImageGroupConfig(**i) for i in self.images)
        if self.format != "octo-release":
            raise ValueError(f"format: expected 'octo-release', got {self.format!r}")
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} not divisible by num_heads {self.num_heads}")
        if not 1 <= self.window_size <= self.max_horizon:
            raise ValueError(f"window_size {self.window_size} must be in 1..max_horizon {self.max_horizon}")
        if not self.images:
            raise ValueError("images: an Octo model needs at least one image tokenizer")
        self.vocab = tuple(self.vocab)
        if self.language_encoder not in ("t5", "words"):
            raise ValueError(f"language_encoder: must be t5 or words, got {self.language_encoder!r}")
        if self.language_encoder == "words" and self.language_dim % self.num_heads:
            raise ValueError(f"language_dim {self.language_dim} not divisible by num_heads {self.num_heads}")
        if self.proprio_dim < 0:
            raise ValueError(f"proprio_dim: must be >= 0, got {self.proprio_dim}")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def from_dict(cls, raw: dict, where: str) -> "OctoNetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{where}: unknown config keys {unknown}")
        return cls(**raw)

    @classmethod
    def load(cls, path: Path) -> "OctoNetConfig":
        return cls.from_dict(json.loads(path.read_text()), str(path))
