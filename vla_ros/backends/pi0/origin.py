"""Where a π₀-family checkpoint was trained (openpi or LeRobot) and the preprocessing that follows from it.

The two toolchains feed the same network differently; a checkpoint must be run the way it was
trained. `read_profile` collects, from the checkpoint's own files where they say it:

- image resize: openpi PIL bilinear (openpi-client's resize_with_pad); LeRobot torch bilinear
  without antialias (`resize_with_pad_torch`, on rgb / 255).
- prompt: openpi cleans it; π₀ encodes "\\n" apart. LeRobot π₀: task + "\\n" as is, one
  encoding. π₀.5 (both): "Task: ..., State: <256 bins>;\\nAction: ".
- normalisation: openpi π₀ mean/std, π₀.5 quantiles, eps 1e-6 both ways. LeRobot: the
  preprocessor's `norm_map` / config.json `normalization_mapping` per feature type, its `eps`
  (1e-8) on normalise only (plain std back).
- camera slots: openpi base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb. LeRobot: the VISUAL
  `input_features` in order (prefix `observation.images.` dropped), then `empty_cameras`.
- denoising steps: openpi 10; LeRobot `num_inference_steps`.
- time-embedding periods: 4e-3..4 unless config.json says (`min_period` / `max_period`).

Each value's source (file and key, or "default ...") is kept in `CheckpointProfile.sources`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.backends.pi0.configuration import Pi0Config, read_json

ORIGINS = ("openpi", "lerobot")
NORM_MODES = ("mean_std", "quantiles", "quantile10", "min_max", "identity")
RESIZE = {"openpi": "pil_bilinear", "lerobot": "torch_bilinear"}
EPS = {"openpi": 1e-6, "lerobot": 1e-8}
DEFAULT_STEPS = 10
LEROBOT_PREPROCESSOR = "policy_preprocessor*.json"
LEROBOT_IMAGE_PREFIX = "observation.images."
LEROBOT_NORMALIZER = "normalizer_processor"


@dataclass(frozen=True)
class CheckpointProfile:
    """How to feed one checkpoint: what differs between origins, and where each value came from."""

    origin: str  # openpi | lerobot
    resize: str  # pil_bilinear | torch_bilinear
    state_norm: str  # one of NORM_MODES
    action_norm: str
    eps: float  # normalisation epsilon (openpi: both directions; LeRobot: normalise, and zero ranges)
    steps: int  # Euler steps the checkpoint was trained to be sampled with
    image_slots: tuple[str, ...]
    max_token_len: int
    time_min_period: float
    time_max_period: float
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # value name -> where it came from

    def describe(self) -> dict[str, str]:
        """Value name -> "value (source)", for the load log."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "sources"]
        return {n: f"{getattr(self, n)!r} ({self.sources.get(n, 'default')})" for n in names}

    def apply(self, cfg: Pi0Config) -> Pi0Config:
        """`cfg` with this profile's camera slots, prompt length and time periods."""
        return dataclasses.replace(
            cfg,
            image_slots=self.image_slots,
            max_token_len=self.max_token_len,
            time_min_period=self.time_min_period,
            time_max_period=self.time_max_period,
        )


def detect_origin(folder: Path, explicit: str | None = None) -> tuple[str, str]:
    """(origin, reason): `explicit` if given, else from the folder's files; ValueError if undecidable."""
    if explicit is not None:
        if explicit not in ORIGINS:
            raise ValueError(f"origin: must be one of {list(ORIGINS)}, got {explicit!r}")
        return explicit, "origin setting"
    lerobot = sorted(p.name for p in folder.glob(LEROBOT_PREPROCESSOR)) + sorted(
        p.name for p in folder.glob("*normalizer_processor*.safetensors")
    )
    if lerobot:
        return "lerobot", f"detected: {lerobot[0]}"
    openpi = [p for p in ("norm_stats.json",) if (folder / p).is_file()] + sorted(
        str(p.relative_to(folder)) for p in folder.glob("assets/*/norm_stats.json")
    )
    if openpi:
        return "openpi", f"detected: {openpi[0]}"
    raw = _config_json(folder)
    if isinstance(raw, dict) and "type" in raw and ("input_features" in raw or "normalization_mapping" in raw):
        return "lerobot", "detected: config.json has LeRobot's type/input_features"
    raise ValueError(
        f"{folder}: cannot tell whether this checkpoint comes from openpi or LeRobot "
        f"(no {LEROBOT_PREPROCESSOR}, norm_stats.json or LeRobot config.json); set 'origin'"
    )


def default_profile(cfg: Pi0Config, origin: str = "openpi") -> CheckpointProfile:
    """The origin's defaults for `cfg`'s model type (π₀ mean/std, π₀.5 quantiles), taking cfg's sizes."""
    norm = "quantiles" if cfg.pi05 else "mean_std"
    return CheckpointProfile(
        origin=origin,
        resize=RESIZE[origin],
        state_norm=norm,
        action_norm=norm,
        eps=EPS[origin],
        steps=DEFAULT_STEPS,
        image_slots=cfg.image_slots,
        max_token_len=cfg.max_token_len,
        time_min_period=cfg.time_min_period,
        time_max_period=cfg.time_max_period,
        sources={
            "resize": f"{origin} preprocessing",
            "eps": f"{origin} default",
            "steps": "default",
            "state_norm": f"{origin} default for {cfg.model_type}",
            "action_norm": f"{origin} default for {cfg.model_type}",
        },
    )


def read_profile(folder: Path, cfg: Pi0Config, origin: str, origin_reason: str) -> CheckpointProfile:
    """The profile of the checkpoint in `folder` (config already parsed into `cfg`)."""
    base = default_profile(cfg, origin)
    values: dict[str, Any] = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name != "sources"}
    sources = {**base.sources, "origin": origin_reason}
    raw = _config_json(folder) or {}
    cfg_file = str(folder / "config.json")
    for name, keys in (
        ("max_token_len", ("max_token_len", "tokenizer_max_length")),
        ("time_min_period", ("time_min_period", "min_period")),
        ("time_max_period", ("time_max_period", "max_period")),
        ("image_slots", ("image_slots",)),
    ):
        key = next((k for k in keys if k in raw), None)
        sources[name] = f"{cfg_file}:{key}" if key else f"default for {cfg.model_type}"
    if origin == "lerobot":
        _lerobot_values(folder, raw, cfg_file, values, sources)
    return CheckpointProfile(**values, sources=sources)


def _lerobot_values(folder: Path, raw: dict, cfg_file: str, values: dict, sources: dict) -> None:
    """Fill `values`/`sources` from LeRobot's config.json and policy_preprocessor.json."""
    if "num_inference_steps" in raw:
        steps = raw["num_inference_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"{cfg_file}: num_inference_steps must be a positive integer, got {steps!r}")
        values["steps"], sources["steps"] = steps, f"{cfg_file}:num_inference_steps"
    slots = _lerobot_cameras(raw, cfg_file)
    if slots:
        values["image_slots"], sources["image_slots"] = slots, f"{cfg_file}:input_features"
    mapping, where = raw.get("normalization_mapping"), f"{cfg_file}:normalization_mapping"
    normalizer = _lerobot_normalizer(folder)
    if normalizer is not None:
        step_file, config = normalizer
        if "norm_map" in config:
            mapping, where = config["norm_map"], f"{step_file}:norm_map"
        if "eps" in config:
            values["eps"], sources["eps"] = _positive(config["eps"], f"{step_file}:eps"), f"{step_file}:eps"
    if mapping is not None:
        if not isinstance(mapping, dict):
            raise ValueError(f"{where}: expected a mapping of feature type -> mode, got {mapping!r}")
        for name, feature in (("state_norm", "STATE"), ("action_norm", "ACTION")):
            if feature in mapping:
                values[name], sources[name] = _norm_mode(mapping[feature], f"{where}.{feature}"), f"{where}.{feature}"


def _lerobot_cameras(raw: dict, where: str) -> tuple[str, ...]:
    """Image slot names from `input_features` (VISUAL, in order; prefix observation.images. dropped) + empty cameras."""
    features = raw.get("input_features") or {}
    if not isinstance(features, dict):
        raise ValueError(f"{where}: input_features must be a mapping, got {features!r}")
    slots = [
        k.removeprefix(LEROBOT_IMAGE_PREFIX)
        for k, v in features.items()
        if isinstance(v, dict) and v.get("type") == "VISUAL"
    ]
    empty = raw.get("empty_cameras", 0)
    if isinstance(empty, bool) or not isinstance(empty, int) or empty < 0:
        raise ValueError(f"{where}: empty_cameras must be a non-negative integer, got {empty!r}")
    slots += [f"empty_camera_{i}" for i in range(empty) if f"empty_camera_{i}" not in slots]
    return tuple(slots)


def _lerobot_normalizer(folder: Path) -> tuple[str, dict] | None:
    """(file, config) of the normalizer step in the preprocessor pipeline, if the folder has one."""
    for path in sorted(folder.glob(LEROBOT_PREPROCESSOR)):
        pipeline = read_json(path)
        steps = pipeline.get("steps", []) if isinstance(pipeline, dict) else []
        for step in steps:
            if isinstance(step, dict) and LEROBOT_NORMALIZER in str(step.get("registry_name", "")):
                config = step.get("config", {})
                return str(path), config if isinstance(config, dict) else {}
    return None


def _norm_mode(value: Any, where: str) -> str:
    mode = str(value).lower()
    if mode not in NORM_MODES:
        raise ValueError(f"{where}: unknown normalisation mode {value!r} (known: {[m.upper() for m in NORM_MODES]})")
    return mode


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{where}: must be a positive number, got {value!r}")
    return float(value)


def _config_json(folder: Path) -> Any:
    path = folder / "config.json"
    return read_json(path) if path.is_file() else None
