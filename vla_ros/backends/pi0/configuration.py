"""π₀ model configuration: the architecture sizes, read from a checkpoint's `config.json`.

Accepted `config.json` flavours (unknown keys are ignored, known ones are type-checked):
- openpi's PyTorch converter: `action_dim`, `action_horizon`, `paligemma_variant`,
  `action_expert_variant`, `precision`;
- LeRobot's `PI0Config` / `PI05Config`: `type: pi0 | pi05`, `chunk_size`, `max_state_dim`,
  `max_action_dim`, `tokenizer_max_length`, `image_resolution`, `min_period`, `max_period`, the
  two variants (camera order, normalisation and steps are read by `origin.py`);
- ours (what `Pi0Config.save` writes): explicit `paligemma`, `action_expert` and `vision` sizes,
  for models that are not one of the named variants (tests, benchmarks).

openpi's converter writes no model type: π₀.5 is then recognised from the weight names
(`checkpoint.weights_are_pi05`) and passed in as `pi05`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# openpi's camera slots, in the order the prefix embeds them
IMAGE_SLOTS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")


@dataclass(frozen=True)
class GemmaSpec:
    """One Gemma stack (openpi `gemma.Config`)."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class VisionSpec:
    """SigLIP vision tower (ViT, no pooling head)."""

    image_size: int = 224  # square input, pixels
    patch_size: int = 14
    width: int = 1152
    depth: int = 27
    mlp_dim: int = 4304
    num_heads: int = 16

    @property
    def num_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


GEMMA_VARIANTS = {
    "gemma_2b": GemmaSpec(width=2048, depth=18, mlp_dim=16_384, num_heads=8, num_kv_heads=1, head_dim=256),
    "gemma_300m": GemmaSpec(width=1024, depth=18, mlp_dim=4096, num_heads=8, num_kv_heads=1, head_dim=256),
}
SO400M_14 = VisionSpec()
PALIGEMMA_VOCAB = 257_152
MODEL_TYPES = ("pi0", "pi05")


@dataclass(frozen=True)
class Pi0Config:
    paligemma: GemmaSpec = GEMMA_VARIANTS["gemma_2b"]  # the VLM's language model
    action_expert: GemmaSpec = GEMMA_VARIANTS["gemma_300m"]
    vision: VisionSpec = SO400M_14
    vocab_size: int = PALIGEMMA_VOCAB
    state_dim: int = 32  # padded state width (state_proj input)
    action_dim: int = 32  # padded action width (action_in/out_proj)
    action_horizon: int = 50  # action tokens per chunk
    max_token_len: int = 48  # prompt tokens (padded / truncated)
    image_slots: tuple[str, ...] = IMAGE_SLOTS
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10_000.0
    pi05: bool = False  # π₀.5: adaptive-RMSNorm time conditioning, no state token, state in the prompt
    time_min_period: float = 4e-3  # sin/cos time embedding periods (flow time t in [0, 1])
    time_max_period: float = 4.0
    extra: dict = field(default_factory=dict, compare=False)  # provenance (e.g. checkpoint precision)

    def __post_init__(self):
        object.__setattr__(self, "image_slots", tuple(self.image_slots))
        a, b = self.paligemma, self.action_expert
        if (a.num_heads, a.num_kv_heads, a.head_dim, a.depth) != (b.num_heads, b.num_kv_heads, b.head_dim, b.depth):
            raise ValueError(
                f"paligemma and action_expert must share depth and attention layout (they attend jointly): {a} vs {b}"
            )
        if a.num_heads % a.num_kv_heads:
            raise ValueError(f"num_heads {a.num_heads} is not a multiple of num_kv_heads {a.num_kv_heads}")
        if self.vision.image_size % self.vision.patch_size:
            raise ValueError(
                f"image_size {self.vision.image_size} not divisible by patch_size {self.vision.patch_size}"
            )
        if b.width % 2:
            raise ValueError(f"action_expert width must be even (sin/cos time embedding), got {b.width}")
        for name in ("state_dim", "action_dim", "action_horizon", "max_token_len", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.image_slots:
            raise ValueError("image_slots must not be empty")
        if not 0 < self.time_min_period < self.time_max_period:
            raise ValueError(
                f"need 0 < time_min_period < time_max_period, got {self.time_min_period}, {self.time_max_period}"
            )

    @property
    def model_type(self) -> str:
        return "pi05" if self.pi05 else "pi0"

    @property
    def suffix_len(self) -> int:
        """Tokens through the action expert: (state token +) action tokens."""
        return self.action_horizon + (0 if self.pi05 else 1)

    @property
    def prefix_len(self) -> int:
        return len(self.image_slots) * self.vision.num_tokens + self.max_token_len

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["image_slots"] = list(self.image_slots)
        del out["pi05"]
        return {"type": self.model_type, **out}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def from_json(cls, raw: dict, where: str = "config.json", pi05: bool | None = None) -> Pi0Config:
        """Parse any accepted flavour; ValueError naming `where` and the key on a bad value.

        pi05: the model type when the file names none (openpi's converter); a `type` wins.
        """
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        kind = raw.get("type", "pi05" if pi05 else "pi0")
        if kind not in MODEL_TYPES:
            raise ValueError(f"{where}: type is {kind!r}, this backend loads {list(MODEL_TYPES)} checkpoints")
        kw: dict[str, Any] = {"pi05": kind == "pi05"}
        kw["paligemma"] = _gemma(raw, "paligemma", "paligemma_variant", "gemma_2b", where)
        kw["action_expert"] = _gemma(raw, "action_expert", "action_expert_variant", "gemma_300m", where)
        kw["vision"] = _vision(raw, where)
        action_dim = _int(raw, ("action_dim", "max_action_dim"), 32, where)
        kw["action_dim"] = action_dim
        kw["state_dim"] = _int(raw, ("state_dim", "max_state_dim"), action_dim, where)
        kw["action_horizon"] = _int(raw, ("action_horizon", "chunk_size"), 50, where)
        kw["max_token_len"] = _int(raw, ("max_token_len", "tokenizer_max_length"), 200 if kw["pi05"] else 48, where)
        kw["vocab_size"] = _int(raw, ("vocab_size",), PALIGEMMA_VOCAB, where)
        if "image_slots" in raw:
            slots = raw["image_slots"]
            if not isinstance(slots, list) or not all(isinstance(s, str) for s in slots):
                raise ValueError(f"{where}: image_slots must be a list of names, got {slots!r}")
            kw["image_slots"] = tuple(slots)
        for name in ("rms_norm_eps", "rope_theta"):
            if name in raw:
                kw[name] = _number(raw[name], name, where)
        for name, lerobot_name in (("time_min_period", "min_period"), ("time_max_period", "max_period")):
            for key in (name, lerobot_name):
                if key in raw:
                    kw[name] = _number(raw[key], key, where)
        kw["extra"] = {k: raw[k] for k in ("precision", "dtype") if k in raw}
        try:
            return cls(**kw)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc

    @classmethod
    def load(cls, path: Path, pi05: bool | None = None) -> Pi0Config:
        return cls.from_json(read_json(path), str(path), pi05)


def read_json(path: Path) -> Any:
    """A JSON file; ValueError naming the file when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def _int(raw: dict, names: tuple[str, ...], default: int, where: str) -> int:
    for name in names:
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
            return value
    return default


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def _gemma(raw: dict, key: str, variant_key: str, default: str, where: str) -> GemmaSpec:
    if key in raw:
        return _spec(GemmaSpec, raw[key], key, where)
    variant = raw.get(variant_key, default)
    if variant not in GEMMA_VARIANTS:
        raise ValueError(f"{where}: {variant_key} {variant!r} is not one of {sorted(GEMMA_VARIANTS)}")
    return GEMMA_VARIANTS[variant]


def _vision(raw: dict, where: str) -> VisionSpec:
    if "vision" in raw:
        return _spec(VisionSpec, raw["vision"], "vision", where)
    resolution = raw.get("image_resolution")
    if resolution is None:
        return SO400M_14
    if not (
        isinstance(resolution, list)
        and len(resolution) == 2
        and resolution[0] == resolution[1]
        and isinstance(resolution[0], int)
    ):
        raise ValueError(f"{where}: image_resolution must be a square [size, size], got {resolution!r}")
    return dataclasses.replace(SO400M_14, image_size=resolution[0])


def _spec(cls, value: Any, key: str, where: str):
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} must be an object of sizes, got {value!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    unknown, missing = sorted(set(value) - names), sorted(required - set(value))
    if unknown or missing:
        raise ValueError(
            f"{where}: {key} has unknown keys {unknown} / misses keys {missing} (expected {sorted(names)})"
        )
    for name, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{where}: {key}.{name} must be a positive integer, got {v!r}")
    return cls(**value)
