"""A LeRobot SmolVLA folder (`save_pretrained` of LeRobot 0.6.1) -> config, profile, statistics, tokenizer, model.

The folder as LeRobot saves it: `config.json` (type smolvla), `model.safetensors` (keys under `model.`:
`vlm_with_expert.vlm.model.{vision_model, connector, text_model}`, `vlm_with_expert.lm_expert`,
`state_proj`, `action_in_proj`, `action_out_proj`, `action_time_mlp_in/out`; the VLM's `lm_head` is
accepted and unused), `policy_preprocessor.json` / `policy_postprocessor.json` and their normaliser
statistics (`*normalizer_processor.safetensors`). LeRobot reads the SmolVLM2 backbone's config and
tokenizer from the hub by `vlm_model_name`; here they are local files: the folder's `vlm_config.json`
and tokenizer files, or the `vlm` setting (a local SmolVLM2 folder). Without either the load is
refused, naming what to put where.

What the pipelines say is read, step by step, and what this backend does not reproduce is refused
(`PRE_STEPS` / `POST_STEPS`): the new-line step, the tokenizer step's arguments, the normaliser's
`norm_map`, `eps` and statistics (its `state_file`), the relative/absolute action steps (π₀'s reader,
`pi0/origin.py`). Every value's source is kept for the load log (`LoadedCheckpoint.provenance`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.pi0.origin import (
    LEROBOT_ABSOLUTE,
    LEROBOT_NORMALIZER,
    LEROBOT_POSTPROCESSOR,
    LEROBOT_PREPROCESSOR,
    LEROBOT_RELATIVE,
    RelativeActions,
    _lerobot_relative,
    _norm_mode,
    _positive,
)
from vla_ros.backends.smolvla.configuration import (
    ACTION_KEY,
    PADDINGS,
    STATE_KEY,
    SmolVLAConfig,
    read_json,
    vlm_config_from_json,
)
from vla_ros.backends.smolvla.modeling import SmolVLAModel
from vla_ros.backends.smolvla.processing import SmolVLATokenizer
from vla_ros.backends.smolvla.settings import SmolVLASettings
from vla_ros.backends.weights import check_shapes

LOG = logging.getLogger(__name__)
WHO = "SmolVLA"
CONFIG, WEIGHTS, VLM_CONFIG = "config.json", "model.safetensors", "vlm_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
KEY_PREFIX = "model."
UNUSED_KEYS = ("vlm_with_expert.vlm.lm_head.weight",)  # the VLM's output head: no text is generated
NEWLINE_STEP, TOKENIZER_STEP, UNNORMALIZER_STEP = (
    "smolvla_new_line_processor",
    "tokenizer_processor",
    "unnormalizer_processor",
)
# processor steps whose effect this backend reproduces (or that change no value it feeds)
PRE_STEPS = (
    "rename_observations_processor",  # robot cameras are mapped to model cameras by the `cameras` setting
    "to_batch_processor",
    NEWLINE_STEP,
    TOKENIZER_STEP,
    "device_processor",
    LEROBOT_NORMALIZER,
    LEROBOT_RELATIVE,
)
POST_STEPS = (UNNORMALIZER_STEP, "device_processor", LEROBOT_ABSOLUTE)
TOKENIZER_KEYS = ("max_length", "task_key", "padding_side", "padding", "truncation", "tokenizer_name")
OLD_STATS_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")


# --- weights ----------------------------------------------------------------------------------


def save_weights(path: Path, model: SmolVLAModel) -> None:
    """model.safetensors in LeRobot's layout (keys under `model.`)."""
    save_file({KEY_PREFIX + k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))


def load_weights(path: Path, model: SmolVLAModel) -> None:
    """Copy `path`'s tensors into `model` (any device/dtype); BackendError naming every mismatch first."""
    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt") as f:
            names = {k.removeprefix(KEY_PREFIX): k for k in f.keys()}
            old = sorted(k for k in names if k.startswith(OLD_STATS_PREFIXES))
            if old:
                raise BackendError(
                    f"{WHO} weights {path}: normalisation statistics inside the weights ({old[:2]}...): a checkpoint "
                    "saved by LeRobot < 0.4; convert it with LeRobot's migrate_policy_normalization script (it "
                    "writes the processor pipelines and their statistics) and load the result"
                )
            for key in UNUSED_KEYS:
                names.pop(key, None)
            shapes = {k: tuple(f.get_slice(names[k]).get_shape()) for k in names}
            check_shapes(shapes, expected, f"{WHO} weights {path} do not match config.json + the VLM config", names)
            with torch.no_grad():
                for key, target in expected.items():
                    target.copy_(f.get_tensor(names[key]))
    except SafetensorError as exc:
        raise BackendError(f"{WHO} weights {path}: not a readable safetensors file ({exc})") from exc


def build_model(cfg: SmolVLAConfig, device: str = "cpu", dtype: torch.dtype = torch.float32, empty: bool = True):
    """The model on `device`, VLM and expert in `dtype`, eval mode, no parameter gradients.

    empty: parameters uninitialised (built on the meta device, then allocated): every one is then
    overwritten by `load_weights`; False draws PyTorch's default initialisation (random models).
    """
    with torch.device("meta" if empty else device):
        model = SmolVLAModel(cfg)
    if empty:
        model = model.to_empty(device=device)
        buffers = [name for name, _ in model.named_buffers()]
        if buffers:  # none expected: a buffer would be left uninitialised
            raise BackendError(f"{WHO}: the model has buffers {buffers} that loading would leave uninitialised")
    return model.set_dtype(dtype).eval().requires_grad_(False)


# --- the processor pipelines ------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    where: str  # file:steps[i].name
    name: str
    config: dict
    state_file: str | None


def pipeline_steps(folder: Path, pattern: str, known: tuple[str, ...]) -> list[Step]:
    """The steps of the one pipeline file matching `pattern` ([] without one); BackendError for a step not in
    `known` (its effect would be missing) or several files (which one LeRobot loads is the caller's choice)."""
    files = sorted(folder.glob(pattern))
    if len(files) > 1:
        raise BackendError(f"{WHO} checkpoint {folder}: several pipelines {[p.name for p in files]}; keep one")
    if not files:
        return []
    try:
        raw = read_json(files[0])
    except ValueError as exc:
        raise BackendError(f"{WHO} checkpoint: {exc}") from exc
    steps = raw.get("steps") if isinstance(raw, dict) else None
    if not isinstance(steps, list):
        raise BackendError(f"{files[0]}: expected a LeRobot processor pipeline with a 'steps' list")
    out = []
    for i, step in enumerate(steps):
        name = step.get("registry_name") or step.get("class") if isinstance(step, dict) else None
        where = f"{files[0]}:steps[{i}].{name}"
        if name not in known:
            raise BackendError(
                f"{where}: processor step {name!r} is not reproduced by the {WHO} backend (it reproduces "
                f"{list(known)}); its effect on the model's inputs or outputs would be missing"
            )
        config = step.get("config", {})
        if not isinstance(config, dict):
            raise BackendError(f"{where}.config: expected a mapping, got {config!r}")
        out.append(Step(where, name, config, step.get("state_file")))
    return out


def _step(steps: list[Step], name: str) -> Step | None:
    return next((s for s in steps if s.name == name), None)


@dataclass(frozen=True)
class SmolVLAProfile:
    """How to feed the checkpoint, read from its pipelines (else config.json), and where each value came from."""

    steps: int
    state_norm: str  # mean_std | quantiles | quantile10 | min_max | identity
    action_norm: str
    eps: float
    max_length: int
    padding: str
    padding_side: str
    truncation: bool
    newline: bool
    relative_actions: RelativeActions | None = None
    state_stats: str = ""  # file of the state statistics
    action_stats: str = ""
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def describe(self) -> dict[str, str]:
        names = [f.name for f in dataclasses.fields(self) if f.name != "sources"]
        return {n: f"{getattr(self, n)!r} ({self.sources.get(n, 'default')})" for n in names}


def read_profile(folder: Path, cfg: SmolVLAConfig, raw: dict, settings: SmolVLASettings) -> SmolVLAProfile:
    """The checkpoint's processing: pipelines first, config.json where there are none (LeRobot builds them from it)."""
    cfg_file = str(folder / CONFIG)
    pre = pipeline_steps(folder, LEROBOT_PREPROCESSOR, PRE_STEPS)
    post = pipeline_steps(folder, LEROBOT_POSTPROCESSOR, POST_STEPS)
    values: dict[str, Any] = {
        "steps": cfg.num_steps,
        "eps": 1e-8,
        "max_length": cfg.tokenizer_max_length,
        "padding": cfg.pad_language_to,
        "padding_side": "right",
        "truncation": True,
        "newline": True,
    }
    sources = {
        "steps": f"{cfg_file}:num_steps" if "num_steps" in raw else "default (LeRobot's 10)",
        "eps": "default (LeRobot's 1e-8)",
        "max_length": f"{cfg_file}:tokenizer_max_length",
        "padding": f"{cfg_file}:pad_language_to",
        "padding_side": "LeRobot's SmolVLA processor",
        "truncation": "LeRobot's tokenizer step",
        "newline": "LeRobot's SmolVLA processor (no pipeline files)",
    }
    if settings.steps is not None:
        values["steps"], sources["steps"] = settings.steps, settings.source
    if pre:
        values["newline"] = _step(pre, NEWLINE_STEP) is not None
        sources["newline"] = (
            f"{folder / 'policy_preprocessor*.json'}: {NEWLINE_STEP} {'present' if values['newline'] else 'absent'}"
        )
        tok = _step(pre, TOKENIZER_STEP)
        if tok is None:
            raise BackendError(
                f"{pre[0].where.split(':steps[')[0]}: no {TOKENIZER_STEP} step: SmolVLA needs the prompt tokens"
            )
        unknown = sorted(set(tok.config) - set(TOKENIZER_KEYS))
        if unknown:
            raise BackendError(f"{tok.where}.config: keys {unknown} are not reproduced (known: {list(TOKENIZER_KEYS)})")
        for key, check in (("max_length", int), ("padding", str), ("padding_side", str), ("truncation", bool)):
            if key in tok.config:
                if not isinstance(tok.config[key], check) or (check is int and isinstance(tok.config[key], bool)):
                    raise BackendError(f"{tok.where}.config.{key}: expected {check.__name__}, got {tok.config[key]!r}")
                values[key], sources[key] = tok.config[key], f"{tok.where}.config.{key}"
        if values["padding"] not in PADDINGS or values["padding_side"] not in ("right", "left"):
            raise BackendError(
                f"{tok.where}.config: padding {values['padding']!r} / padding_side {values['padding_side']!r} "
                "not supported"
            )
        if tok.config.get("task_key", "task") != "task":
            raise BackendError(f"{tok.where}.config.task_key: {tok.config['task_key']!r}; supported: 'task'")
    modes = _norm_modes(folder, cfg, raw, pre, post, settings, values, sources)
    values.update(modes)
    warnings: list[str] = []  # π₀'s reader warns about steps by its own list; the steps are checked above
    try:
        relative = _lerobot_relative(folder, raw, cfg_file, warnings)
    except ValueError as exc:
        raise BackendError(f"{WHO} checkpoint: {exc}") from exc
    if relative is not None:
        values["relative_actions"], sources["relative_actions"] = relative, relative.source
    else:
        sources["relative_actions"] = "no relative-action steps: every dim absolute"
    return SmolVLAProfile(**values, sources=sources)


def _norm_modes(
    folder: Path,
    cfg: SmolVLAConfig,
    raw: dict,
    pre: list[Step],
    post: list[Step],
    settings: SmolVLASettings,
    values: dict,
    sources: dict,
) -> dict:
    """State/action normalisation modes, eps and statistics files (normaliser step < config.json < setting)."""
    cfg_file = str(folder / CONFIG)
    out: dict[str, Any] = {}
    stated: dict[str, tuple[str, str]] = {}  # feature -> (mode, where), what the folder says
    if "normalization_mapping" in raw:
        for feature in ("VISUAL", "STATE", "ACTION"):
            if feature in cfg.normalization_mapping:
                where = f"{cfg_file}:normalization_mapping.{feature}"
                stated[feature] = (_mode(cfg.normalization_mapping[feature], where), where)
    for step, features in (
        (_step(pre, LEROBOT_NORMALIZER), ("VISUAL", "STATE")),
        (_step(post, UNNORMALIZER_STEP), ("ACTION",)),
    ):
        if step is None:
            continue
        norm_map = step.config.get("norm_map", {})
        if not isinstance(norm_map, dict):
            raise BackendError(f"{step.where}.config.norm_map: expected a mapping, got {norm_map!r}")
        for feature in features:
            if feature in norm_map:
                where = f"{step.where}.config.norm_map.{feature}"
                stated[feature] = (_mode(norm_map[feature], where), where)
        if "eps" in step.config and "eps" not in out:  # the normaliser's (pre-processor) first
            try:
                out["eps"] = _positive(step.config["eps"], f"{step.where}.config.eps")
            except ValueError as exc:
                raise BackendError(str(exc)) from exc
            sources["eps"] = f"{step.where}.config.eps"
        keys = step.config.get("normalize_observation_keys")
        if features[0] == "VISUAL" and keys is not None and STATE_KEY not in keys:
            stated["STATE"] = ("identity", f"{step.where}.config.normalize_observation_keys (no {STATE_KEY})")
    if stated.get("VISUAL", ("identity",))[0] != "identity":
        mode, where = stated["VISUAL"]
        raise BackendError(f"{where}: images normalised with {mode.upper()}: not supported (SmolVLA's is IDENTITY)")
    for feature, name in (("STATE", "state_norm"), ("ACTION", "action_norm")):
        if feature in stated:
            mode, where = stated[feature]
            if settings.normalization is not None and settings.normalization != mode:
                raise BackendError(
                    f"{settings.source}: normalization {settings.normalization!r} contradicts the checkpoint, which "
                    f"normalises its {feature.lower()} with {mode!r} ({where}); remove the setting"
                )
            out[name], sources[name] = mode, where
        elif settings.normalization is not None:
            out[name], sources[name] = settings.normalization, settings.source
        else:
            out[name], sources[name] = "mean_std", "default (LeRobot SmolVLA's MEAN_STD)"
    for feature, step, name in (
        (STATE_KEY, _step(pre, LEROBOT_NORMALIZER), "state_stats"),
        (ACTION_KEY, _step(post, UNNORMALIZER_STEP), "action_stats"),
    ):
        if step is not None and step.state_file:
            out[name], sources[name] = str(folder / step.state_file), f"{step.where}.state_file"
        else:
            files = sorted(folder.glob("*normalizer_processor*.safetensors"))
            out[name] = ", ".join(str(f) for f in files)
            sources[name] = f"the folder's *normalizer_processor*.safetensors ({feature})"
    return out


def _mode(value: Any, where: str) -> str:
    try:
        return _norm_mode(value, where)
    except ValueError as exc:
        raise BackendError(str(exc)) from exc


def load_stats(profile: SmolVLAProfile, folder: Path) -> dict[str, dict]:
    """{"state": {stat: (D,)}, "action": {...}} from the normaliser statistics the profile names."""
    out: dict[str, dict] = {"state": {}, "action": {}}
    for feature, files in (("state", profile.state_stats), ("action", profile.action_stats)):
        paths = [Path(p) for p in files.split(", ") if p]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing or not paths:
            found = missing or "no *normalizer_processor*.safetensors"
            raise BackendError(
                f"{WHO} checkpoint {folder}: {feature} normalisation statistics not found ({found}); LeRobot saves "
                "them with the processor pipelines (policy_preprocessor.json)"
            )
        prefix = (STATE_KEY if feature == "state" else ACTION_KEY) + "."
        try:
            for path in paths:  # LeRobot's flat `<feature>.<stat>` keys
                with safe_open(str(path), framework="np") as f:
                    out[feature].update(
                        {k.removeprefix(prefix): f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
                    )
        except (SafetensorError, OSError) as exc:
            raise BackendError(f"{WHO} normalisation statistics {files}: {exc}") from exc
    return out


# --- the VLM config and tokenizer ---------------------------------------------------------------


def find_vlm(folder: Path, settings: SmolVLASettings, cfg: SmolVLAConfig) -> tuple[Path, Path, str]:
    """(VLM config file, tokenizer folder, source): the `vlm` setting, else the checkpoint folder's files."""
    if settings.vlm is not None:
        path = Path(settings.vlm).expanduser()
        path = (path if path.is_absolute() else folder / path).resolve()
        config = path if path.is_file() else path / "config.json"
        if not config.is_file():
            raise BackendError(
                f"{settings.source}: vlm: {path} holds no SmolVLM2 config.json (expected a local copy of "
                f"{cfg.vlm_model_name}: config.json and the tokenizer files)"
            )
        return config, config.parent, f"{settings.source}: vlm"
    config = folder / VLM_CONFIG
    if not config.is_file():
        raise BackendError(
            f"{WHO} checkpoint {folder}: no {VLM_CONFIG}. LeRobot builds the VLM backbone from the hub by "
            f"vlm_model_name {cfg.vlm_model_name!r}; this backend reads local files only: copy that model's "
            f"config.json into the checkpoint as {VLM_CONFIG} with its tokenizer files ({', '.join(TOKENIZER_FILES)}, "
            f"...), or set `vlm:` to a local download of it (huggingface-cli download {cfg.vlm_model_name} "
            "--local-dir <dir>)"
        )
    return config, folder, f"{config}"


def load_tokenizer(directory: Path, profile: SmolVLAProfile, what: str) -> SmolVLATokenizer:
    if not any((directory / n).is_file() for n in TOKENIZER_FILES):
        raise BackendError(
            f"{WHO}: no tokenizer in {directory} ({what}; looked for {list(TOKENIZER_FILES)}): put the VLM's "
            "tokenizer files there"
        )
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"{WHO}: cannot read the tokenizer in {directory} ({exc})") from exc
    if profile.padding == "max_length" and tokenizer.pad_token is None:
        raise BackendError(f"{WHO}: the tokenizer in {directory} has no pad token but the pipeline pads to max_length")
    return SmolVLATokenizer(
        tokenizer, profile.max_length, profile.padding, profile.padding_side, profile.truncation, profile.newline
    )


# --- the folder ---------------------------------------------------------------------------------


def check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise BackendError(f"{WHO} checkpoint folder not found: {folder}")
    missing = [n for n in (CONFIG, WEIGHTS) if not (folder / n).is_file()]
    if missing:
        raise BackendError(
            f"{WHO} checkpoint {folder}: missing {missing} (a LeRobot save_pretrained folder: {CONFIG}, {WEIGHTS}, "
            "policy_preprocessor.json / policy_postprocessor.json and their statistics)"
        )


@dataclass(frozen=True)
class LoadedCheckpoint:
    cfg: SmolVLAConfig  # with the VLM config
    profile: SmolVLAProfile
    settings: SmolVLASettings  # `steps` resolved
    stats: dict[str, dict]
    tokenizer: SmolVLATokenizer
    provenance: dict[str, str]


def load_checkpoint(folder: Path, settings: SmolVLASettings) -> LoadedCheckpoint:
    """Read everything but the weights; BackendError naming the file and key of the first problem."""
    check_folder(folder)
    try:
        raw = read_json(folder / CONFIG)
        cfg = SmolVLAConfig.from_json(raw, str(folder / CONFIG))
    except ValueError as exc:
        raise BackendError(f"{WHO} checkpoint: {exc}") from exc
    vlm_file, tokenizer_dir, vlm_source = find_vlm(folder, settings, cfg)
    try:
        vlm = vlm_config_from_json(read_json(vlm_file), str(vlm_file))
        cfg = cfg.with_vlm(vlm, f"{folder / CONFIG} with {vlm_file}")
    except ValueError as exc:
        raise BackendError(f"{WHO} checkpoint: {exc}") from exc
    profile = read_profile(folder, cfg, raw, settings)
    stats = load_stats(profile, folder)
    tokenizer = load_tokenizer(tokenizer_dir, profile, vlm_source)
    settings = dataclasses.replace(settings, steps=profile.steps)
    provenance = {
        "model": f"smolvla: {cfg.layers} of {cfg.text.num_hidden_layers} VLM layers, {cfg.attention_mode} "
        f"(self-attention every {cfg.self_attn_every_n_layers}), expert width {cfg.expert_config().hidden_size} "
        f"({folder / CONFIG})",
        "vlm_config": f"{vlm_file} ({vlm_source})",
        "tokenizer": str(tokenizer_dir),
        "cameras": f"{list(cfg.cameras)} ({folder / CONFIG}:input_features, empty_cameras)",
    }
    provenance.update(profile.describe())
    LOG.info("%s checkpoint %s:\n%s", WHO, folder, "\n".join(f"  {k} = {v}" for k, v in provenance.items()))
    return LoadedCheckpoint(cfg, profile, settings, stats, tokenizer, provenance)
