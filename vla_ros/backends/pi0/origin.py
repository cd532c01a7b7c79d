"""Where a π₀-family checkpoint was trained (openpi or LeRobot) and the preprocessing that follows from it.

The two toolchains feed the same network differently; a checkpoint must be run the way it was
trained. `read_profile` collects, from the checkpoint's own files where they say it:

- image resize: openpi PIL bilinear (openpi-client's resize_with_pad); LeRobot torch bilinear
  without antialias (`resize_with_pad_torch`, on rgb / 255).
- prompt: openpi cleans it; π₀ encodes "\\n" apart. LeRobot π₀: task + "\\n" as is, one
  encoding. π₀.5 (both): "Task: ..., State: <256 bins>;\\nAction: ", unless trained without the state
  in the prompt (openpi's `discrete_state_input=False`, e.g. pi05_libero: then π₀'s prompt, no state at all).
- normalisation: openpi π₀ mean/std, π₀.5 quantiles, eps 1e-6 both ways. LeRobot: the
  preprocessor's `norm_map` / config.json `normalization_mapping` per feature type, its `eps`
  (1e-8) on normalise only (plain std back).
- camera slots: openpi base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb. LeRobot: the VISUAL
  `input_features` in order (prefix `observation.images.` dropped), then `empty_cameras`.
- denoising steps: openpi 10; LeRobot `num_inference_steps`.
- time-embedding periods: 4e-3..4 unless config.json says (`min_period` / `max_period`).
- relative actions (`RelativeActions`): openpi's checkpoint files do not say (the robot settings'
  relative_joints decide). LeRobot (0.6.1, `processor/relative_action_processor.py`): the
  postprocessor's `absolute_actions_processor` step (`enabled`) adds the raw, unnormalised
  `observation.state` to the unnormalised actions, on the dims of the mask that the preprocessor's
  `relative_actions_processor` step builds from its `exclude_joints` and `action_names`; the action
  statistics are those of the actions the model was trained on (relative ones). Without pipeline
  files, config.json's `use_relative_actions`, `relative_exclude_joints`, `action_feature_names`.

Each value's source (file and key, or "default ...") is kept in `CheckpointProfile.sources`; what the
loader reads but does not understand (a processor step, a relative-action key) is a line in
`CheckpointProfile.warnings`.
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
LEROBOT_POSTPROCESSOR = "policy_postprocessor*.json"
LEROBOT_IMAGE_PREFIX = "observation.images."
LEROBOT_NORMALIZER = "normalizer_processor"
LEROBOT_RELATIVE = "relative_actions_processor"  # preprocessor: action -= state on the mask (training labels)
LEROBOT_ABSOLUTE = "absolute_actions_processor"  # postprocessor: action += raw state on the relative step's mask
LEROBOT_STEP_KEYS = {LEROBOT_RELATIVE: ("enabled", "exclude_joints", "action_names"), LEROBOT_ABSOLUTE: ("enabled",)}
# LeRobot π₀ / π₀.5 pipeline steps whose effect the loader reproduces (or that change no value it feeds)
LEROBOT_KNOWN_STEPS = (
    "rename_observations_processor",
    "to_batch_processor",
    LEROBOT_RELATIVE,
    LEROBOT_NORMALIZER,
    "pi05_prepare_state_tokenizer_processor_step",
    "pi0_new_line_processor",
    "tokenizer_processor",
    "device_processor",
    "unnormalizer_processor",
    LEROBOT_ABSOLUTE,
)
LEROBOT_RELATIVE_KEYS = ("use_relative_actions", "relative_exclude_joints", "action_feature_names")
LEROBOT_DEFAULT_EXCLUDE = ("gripper",)  # PI05Config.relative_exclude_joints' default


@dataclass(frozen=True)
class RelativeActions:
    """Which model action dims a checkpoint predicts relative to the raw state (LeRobot's relative actions).

    LeRobot 0.6.1 (`RelativeActionsProcessorStep._build_mask`): with no `exclude` tokens or no `names`,
    every dim; else dim i is absolute when a token (lower-cased) is a substring of names[i].lower(), and
    dims past the names are relative. The absolute target of dim i = unnormalised action + raw state[i].
    """

    enabled: bool
    exclude: tuple[str, ...] = ()
    names: tuple[str, ...] | None = None  # action dim names (the dataset's), None: the checkpoint has none
    source: str = ""

    def mask(self, action_dim: int) -> tuple[bool, ...]:
        """Per model action dim: relative to the state."""
        if not self.enabled:
            return (False,) * action_dim
        tokens = [str(t).lower() for t in self.exclude if t]
        if not tokens or self.names is None:
            return (True,) * action_dim
        mask = [not any(t in str(n).lower() for t in tokens) for n in self.names[:action_dim]]
        return tuple(mask + [True] * (action_dim - len(mask)))

    def __repr__(self) -> str:
        if not self.enabled:
            return "all dims absolute"
        names = "no action names: every dim" if self.names is None else f"action names {list(self.names)}"
        return f"relative to the state except {list(self.exclude)} ({names})"


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
    relative_actions: RelativeActions | None = None  # None: the checkpoint's files do not say
    state_in_prompt: bool = False  # π₀.5 writes the discretised state into the prompt (openpi discrete_state_input)
    warnings: tuple[str, ...] = field(default=(), compare=False)  # what the loader read but does not understand

    def describe(self) -> dict[str, str]:
        """Value name -> "value (source)", for the load log."""
        names = [f.name for f in dataclasses.fields(self) if f.name not in ("sources", "warnings")]
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
        str(p.relative_to(folder)) for p in folder.glob("assets/*/**/norm_stats.json")
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
        state_in_prompt=cfg.pi05,
        sources={
            "resize": f"{origin} preprocessing",
            "eps": f"{origin} default",
            "steps": "default",
            "state_norm": f"{origin} default for {cfg.model_type}",
            "action_norm": f"{origin} default for {cfg.model_type}",
            "relative_actions": "not stated by the checkpoint (the settings' relative_joints decide)",
            "state_in_prompt": f"default for {cfg.model_type}",
        },
    )


def read_profile(folder: Path, cfg: Pi0Config, origin: str, origin_reason: str) -> CheckpointProfile:
    """The profile of the checkpoint in `folder` (config already parsed into `cfg`)."""
    base = default_profile(cfg, origin)
    values: dict[str, Any] = {
        f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name not in ("sources", "warnings")
    }
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
    warnings: list[str] = []
    if origin == "lerobot":
        _lerobot_values(folder, raw, cfg_file, values, sources)
        relative = _lerobot_relative(folder, raw, cfg_file, warnings)
        if relative is not None:
            values["relative_actions"], sources["relative_actions"] = relative, relative.source
    return CheckpointProfile(**values, sources=sources, warnings=tuple(warnings))


def relative_joints(
    profile: CheckpointProfile, joints: tuple[str, ...], named: tuple[str, ...], named_source: str | None
) -> tuple[tuple[str, ...], str]:
    """(the joints predicted relative to the state, where that was read).

    joints: the robot joints of the model's action dims, in order; named / named_source: the settings'
    relative_joints and the layer that set them (None: the settings' default). The checkpoint's mask wins
    over a default; settings that name other joints than the checkpoint's are a ValueError naming both.
    """
    relative = profile.relative_actions
    if relative is None:
        return tuple(named), named_source or "default: none"
    mask = relative.mask(len(joints))
    own = tuple(j for j, rel in zip(joints, mask) if rel)
    if named_source is not None and set(named) != set(own):
        raise ValueError(
            f"{named_source}: relative_joints {list(named)} contradict the checkpoint, which predicts "
            f"{list(own) or 'no joint'} relative to the state ({relative.source}: {relative!r}, over joints "
            f"{list(joints)}); remove relative_joints from the settings or set them to {list(own)}"
        )
    return own, relative.source


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


def _lerobot_relative(folder: Path, raw: dict, cfg_file: str, warnings: list[str]) -> RelativeActions | None:
    """LeRobot's relative actions: the pipeline files' relative/absolute steps, else config.json's keys.

    At inference LeRobot runs the pipelines as saved (config.json's keys only build new ones): the
    postprocessor's absolute step decides whether the state is added, the preprocessor's relative step
    gives the mask. A pipeline that trains relative but does not convert back (or the reverse) is refused.
    """
    pre = _lerobot_steps(folder, LEROBOT_PREPROCESSOR, warnings)
    post = _lerobot_steps(folder, LEROBOT_POSTPROCESSOR, warnings)
    unknown = [
        k for k in raw if any(w in k for w in ("relative", "delta", "absolute")) and k not in LEROBOT_RELATIVE_KEYS
    ]
    if unknown:
        warnings.append(
            f"{cfg_file}: keys {sorted(unknown)} not understood (relative actions: {LEROBOT_RELATIVE_KEYS})"
        )
    in_config = None
    if "use_relative_actions" in raw:
        in_config = _flag(raw["use_relative_actions"], f"{cfg_file}:use_relative_actions")
    if not pre and not post:  # no pipeline files: LeRobot would build them from config.json
        if in_config is None:
            return None
        exclude = _names(
            raw.get("relative_exclude_joints", list(LEROBOT_DEFAULT_EXCLUDE)), cfg_file, "relative_exclude_joints"
        )
        names = raw.get("action_feature_names")
        names = None if names is None else _names(names, cfg_file, "action_feature_names")
        return RelativeActions(
            in_config, exclude, names, f"{cfg_file}:{','.join(k for k in LEROBOT_RELATIVE_KEYS if k in raw)}"
        )
    files = ", ".join(sorted({where.split(":steps[")[0] for where, _ in pre + post}))
    rel = _lerobot_step(pre, LEROBOT_RELATIVE, warnings)
    absolute = _lerobot_step(post, LEROBOT_ABSOLUTE, warnings)
    if rel is None and absolute is None:  # pipelines of an older LeRobot: nothing converts
        if in_config:
            raise ValueError(
                f"{cfg_file}:use_relative_actions is true but the pipelines ({files}) have no {LEROBOT_RELATIVE} / "
                f"{LEROBOT_ABSOLUTE} step: LeRobot would send the relative actions as absolute targets"
            )
        return (
            None if in_config is None else RelativeActions(False, source=f"{cfg_file}:use_relative_actions + {files}")
        )
    if rel is None:
        raise ValueError(
            f"{absolute[0]}: has no paired {LEROBOT_RELATIVE} step in the preprocessor (LeRobot refuses to run it)"
        )
    rel_where, rel_config = rel
    rel_on = _flag(rel_config.get("enabled", False), f"{rel_where}.enabled")
    abs_on = False if absolute is None else _flag(absolute[1].get("enabled", False), f"{absolute[0]}.enabled")
    abs_where = f"{absolute[0]}.enabled" if absolute is not None else f"no {LEROBOT_ABSOLUTE} step in {files}"
    if rel_on != abs_on:
        raise ValueError(
            f"{rel_where}.enabled is {rel_on} but {abs_where} is {abs_on}: the checkpoint's pipelines disagree "
            "on whether its actions are relative to the state"
        )
    exclude = _names(rel_config.get("exclude_joints", []), rel_where, "exclude_joints")
    names = rel_config.get("action_names")
    names = None if names is None else _names(names, rel_where, "action_names")
    source = f"{abs_where} + {rel_where}" if absolute is not None else rel_where
    if in_config is not None and in_config != abs_on:
        warnings.append(
            f"{cfg_file}:use_relative_actions is {in_config} but the pipelines say {abs_on} ({source}); "
            "the pipelines are what LeRobot runs: followed"
        )
    if abs_on and exclude and names is None:
        warnings.append(
            f"{rel_where}: exclude_joints {list(exclude)} cannot apply without action_names: LeRobot then makes "
            "every action dim relative, and so does this loader"
        )
    return RelativeActions(abs_on, exclude, names, source)


def _lerobot_steps(folder: Path, pattern: str, warnings: list[str]) -> list[tuple[str, dict]]:
    """(where, step) of every step in the pipeline files matching `pattern`; a warning for each unknown step."""
    out = []
    for path in sorted(folder.glob(pattern)):
        pipeline = read_json(path)
        steps = pipeline.get("steps", []) if isinstance(pipeline, dict) else []
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            if not isinstance(step, dict):
                warnings.append(f"{path}:steps[{i}]: not a step ({step!r}), ignored")
                continue
            name = step.get("registry_name") or step.get("class") or "(unnamed)"
            where = f"{path}:steps[{i}].{name}"
            if name not in LEROBOT_KNOWN_STEPS:
                warnings.append(
                    f"{where}: processor step {name!r} not understood by the π₀ loader; its effect is not reproduced"
                )
            out.append((where, step))
    return out


def _lerobot_step(steps: list[tuple[str, dict]], name: str, warnings: list[str]) -> tuple[str, dict] | None:
    """(where, config) of the first step registered as `name`; a warning for each config key not understood."""
    for where, step in steps:
        if step.get("registry_name") == name:
            config = step.get("config", {})
            if not isinstance(config, dict):
                raise ValueError(f"{where}.config: expected a mapping, got {config!r}")
            extra = sorted(k for k in config if k not in LEROBOT_STEP_KEYS[name])
            if extra:
                warnings.append(f"{where}.config: keys {extra} not understood by the π₀ loader")
            return where, config
    return None


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: must be true or false, got {value!r}")
    return value


def _names(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}.{key}: must be a list of names, got {value!r}")
    return tuple(value)


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
