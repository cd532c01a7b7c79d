"""π₀ / π₀.5 checkpoint folder <-> model, statistics and tokenizer (PyTorch layout of openpi / LeRobot).

A folder holds `config.json` (`Pi0Config.from_json`), `model.safetensors` with the keys of
openpi's `PI0Pytorch` (`paligemma_with_expert.paligemma.model.language_model.layers.{i}...`,
`paligemma_with_expert.gemma_expert.model.layers.{i}...`, `state_proj`, `action_in_proj`,
`action_time_mlp_in/out`, `action_out_proj`; π₀.5 has `time_mlp_in/out` and no `state_proj`, and
its expert norms are `*layernorm.dense` / `norm.dense`; LeRobot prefixes them with `model.`), normalization
statistics (openpi `norm_stats.json`, also under `assets/<id>/`, or LeRobot's
`*normalizer_processor*.safetensors`) and the PaliGemma SentencePiece `tokenizer.model`.

Known extras of real checkpoints are accepted: `paligemma.lm_head.weight` is tied to the token
embedding (safetensors keeps only one of the two names) and `gemma_expert.lm_head.weight` is an
unused leftover of the converter. Anything else missing, unexpected or misshaped is one
BackendError, raised before any weight is copied.

`load_checkpoint` puts it together: origin (openpi | LeRobot), model type, profile of the
origin's preprocessing (`origin.py`: also which action dims the checkpoint predicts relative to
the state, and warnings for what it read but does not understand), statistics, tokenizer, and the
source of every value.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.normalization import DatasetStatistics
from vla_ros.backends.pi0.configuration import Pi0Config, read_json
from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.openpi_configs import OpenpiConfig, configs_for_assets, lookup
from vla_ros.backends.pi0.origin import CheckpointProfile, detect_origin, read_profile
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tokenizer import PaligemmaTokenizer
from vla_ros.backends.weights import check_shapes

LOG = logging.getLogger(__name__)
PI05_KEY = "time_mlp_in.weight"  # only π₀.5 has it (π₀: action_time_mlp_in)

CONFIG, WEIGHTS, NORM_STATS = "config.json", "model.safetensors", "norm_stats.json"
TOKENIZER_NAMES = ("tokenizer.model", "paligemma_tokenizer.model")
LEROBOT_PREFIX = "model."
EMBED_KEY = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
TIED_TO_EMBED = "paligemma_with_expert.paligemma.lm_head.weight"
UNUSED_KEYS = ("paligemma_with_expert.gemma_expert.lm_head.weight",)
LEROBOT_STATS = {"state": "observation.state", "action": "action"}


# --- weights ----------------------------------------------------------------------------------


def save_weights(path: Path, model: Pi0Model, key_prefix: str = "") -> None:
    """model.safetensors in the real key layout (`key_prefix="model."` writes LeRobot's)."""
    save_file({key_prefix + k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))


def _canonical_names(file_keys: list[str]) -> dict[str, str]:
    """Model key -> key in the file (LeRobot prefix dropped, tied lm_head standing in for the embedding)."""
    names = {(k.removeprefix(LEROBOT_PREFIX)): k for k in file_keys}
    if EMBED_KEY not in names and TIED_TO_EMBED in names:
        names[EMBED_KEY] = names[TIED_TO_EMBED]
    names.pop(TIED_TO_EMBED, None)
    for key in UNUSED_KEYS:
        names.pop(key, None)
    return names


def load_weights(path: Path, model: Pi0Model) -> None:
    """Copy `path`'s tensors into `model` (any device/dtype); BackendError naming every mismatch first."""
    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt") as f:
            names = _canonical_names(list(f.keys()))
            shapes = {k: tuple(f.get_slice(names[k]).get_shape()) for k in names}
            check_shapes(shapes, expected, f"π₀ weights {path} do not match config.json", file_keys=names)
            with torch.no_grad():
                for key, target in expected.items():
                    target.copy_(f.get_tensor(names[key]))
    except SafetensorError as exc:
        raise BackendError(f"π₀ weights {path}: not a readable safetensors file ({exc})") from exc


# --- normalization statistics -------------------------------------------------------------------


def save_norm_stats(path: Path, stats: DatasetStatistics) -> None:
    """openpi's `norm_stats.json` layout."""
    raw = {"state": stats.state.to_json(), "actions": stats.action.to_json()}
    path.write_text(json.dumps({"norm_stats": raw}, indent=1))


def _openpi_raw(path: Path) -> dict[str, dict]:
    raw = read_json(path)
    stats = raw.get("norm_stats", raw) if isinstance(raw, dict) else None
    if not isinstance(stats, dict) or "state" not in stats or "actions" not in stats:
        found = sorted(stats) if isinstance(stats, dict) else type(raw).__name__
        raise ValueError(f"{path}: needs norm_stats.state and norm_stats.actions (found {found})")
    return {"state": stats["state"], "action": stats["actions"]}


def _lerobot_raw(files: list[Path]) -> dict[str, dict]:
    out: dict[str, dict] = {"state": {}, "action": {}}
    for file in files:
        with safe_open(str(file), framework="np") as f:
            for key in f.keys():
                for feature, prefix in LEROBOT_STATS.items():
                    if key.startswith(prefix + "."):
                        out[feature][key.removeprefix(prefix + ".")] = f.get_tensor(key)
    return out


def load_stats(folder: Path, explicit: str | None = None) -> tuple[dict[str, dict], str]:
    """Raw statistics {"state": {stat: (D,)}, "action": {...}} and the file(s) they came from.

    `explicit` (relative to `folder`), else the first of: norm_stats.json, assets/<asset_id>/norm_stats.json
    (exactly one; the id may hold a '/', e.g. physical-intelligence/libero), LeRobot's normalizer safetensors.
    """
    try:
        if explicit is not None:
            path = folder / explicit
            if not path.is_file():
                raise BackendError(f"π₀ normalization statistics not found: {path} (norm_stats setting)")
            return (_lerobot_raw([path]) if path.suffix == ".safetensors" else _openpi_raw(path)), str(path)
        if (folder / NORM_STATS).is_file():
            return _openpi_raw(folder / NORM_STATS), str(folder / NORM_STATS)
        assets = sorted(folder.glob(f"assets/*/**/{NORM_STATS}"))  # asset ids may hold a '/' (openpi repo ids)
        if len(assets) > 1:
            raise BackendError(
                f"π₀ checkpoint {folder}: several statistics {[str(a) for a in assets]}; "
                "pick one with the norm_stats setting"
            )
        if assets:
            return _openpi_raw(assets[0]), str(assets[0])
        lerobot = sorted(folder.glob("*normalizer_processor*.safetensors"))
        if lerobot:
            return _lerobot_raw(lerobot), ", ".join(str(p) for p in lerobot)
    except (ValueError, KeyError, SafetensorError) as exc:
        raise BackendError(f"π₀ normalization statistics: {exc}") from exc
    raise BackendError(
        f"π₀ checkpoint {folder}: no normalization statistics (looked for {NORM_STATS}, assets/*/{NORM_STATS}, "
        "*normalizer_processor*.safetensors)"
    )


# --- the folder ---------------------------------------------------------------------------------


def find_tokenizer(folder: Path) -> Path | None:
    return next((folder / n for n in TOKENIZER_NAMES if (folder / n).is_file()), None)


def check_folder(folder: Path) -> None:
    """BackendError naming every required file the folder lacks."""
    if not folder.is_dir():
        raise BackendError(f"π₀ checkpoint folder not found: {folder}")
    missing = [n for n in (CONFIG, WEIGHTS) if not (folder / n).is_file()]
    if find_tokenizer(folder) is None:
        missing.append(" or ".join(TOKENIZER_NAMES))
    if missing:
        raise BackendError(
            f"π₀ checkpoint {folder}: missing {missing} "
            f"(needs {CONFIG}, {WEIGHTS}, normalization statistics and {TOKENIZER_NAMES[0]})"
        )


def weights_are_pi05(path: Path) -> bool:
    """Whether a model.safetensors holds π₀.5 weights (`time_mlp_in`), read from its key names only."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return any(k.removeprefix(LEROBOT_PREFIX) == PI05_KEY for k in f.keys())
    except SafetensorError as exc:
        raise BackendError(f"π₀ weights {path}: not a readable safetensors file ({exc})") from exc


def load_config(folder: Path) -> Pi0Config:
    """config.json; a file without a model type (openpi's converter) takes it from the weight names."""
    try:
        raw = read_json(folder / CONFIG)
        pi05 = None if isinstance(raw, dict) and "type" in raw else weights_are_pi05(folder / WEIGHTS)
        return Pi0Config.from_json(raw, str(folder / CONFIG), pi05)
    except ValueError as exc:
        raise BackendError(f"π₀ checkpoint: {exc}") from exc


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Everything a π₀ backend needs from a checkpoint folder, before the weights."""

    cfg: Pi0Config
    profile: CheckpointProfile
    settings: Pi0Settings  # with `steps` resolved (settings, else the checkpoint's, else 10)
    stats: dict[str, dict]
    tokenizer: PaligemmaTokenizer
    provenance: dict[str, str]  # value name -> "value (source)", logged once at load


def load_checkpoint(folder: Path, settings: Pi0Settings) -> LoadedCheckpoint:
    """Read config, origin profile, statistics and tokenizer of `folder` (BackendError naming file and key).

    With `settings.openpi_config` the checkpoint is openpi's (a `lerobot` origin setting contradicts it), its
    statistics default to the config's `assets/<asset_id>/norm_stats.json`, its model type and horizon must be
    the config's, and π₀.5's state-in-prompt is the config's; without it, a folder whose assets match a known
    config's asset id logs a hint naming the setting.
    """
    check_folder(folder)
    cfg = load_config(folder)
    openpi = _openpi_config(folder, settings, cfg)
    norm_stats = settings.norm_stats
    if openpi is not None and norm_stats is None and (folder / "assets" / openpi.asset_id / NORM_STATS).is_file():
        norm_stats = f"assets/{openpi.asset_id}/{NORM_STATS}"
    stats, stats_source = load_stats(folder, norm_stats)
    try:
        if openpi is not None and settings.origin is None:
            origin, reason = "openpi", openpi.source()
        else:
            origin, reason = detect_origin(folder, settings.origin)
        profile = read_profile(folder, cfg, origin, reason)
    except ValueError as exc:
        raise BackendError(f"π₀ checkpoint: {exc}") from exc
    if openpi is not None and cfg.pi05:
        profile = dataclasses.replace(
            profile,
            state_in_prompt=bool(openpi.state_in_prompt),
            sources={**profile.sources, "state_in_prompt": openpi.source("state_in_prompt")},
        )
    if settings.max_token_len is not None:
        profile = dataclasses.replace(
            profile, max_token_len=settings.max_token_len, sources={**profile.sources, "max_token_len": settings.source}
        )
    cfg = profile.apply(cfg)
    if settings.steps is None:
        settings = dataclasses.replace(settings, steps=profile.steps)
    else:
        profile = dataclasses.replace(
            profile, steps=settings.steps, sources={**profile.sources, "steps": settings.source}
        )
    try:
        tokenizer = PaligemmaTokenizer(
            find_tokenizer(folder),
            cfg.max_token_len,
            origin=origin,
            pi05=cfg.pi05,
            state_in_prompt=profile.state_in_prompt,
        )
    except (RuntimeError, OSError) as exc:
        raise BackendError(f"π₀ checkpoint {folder}: cannot read the SentencePiece tokenizer ({exc})") from exc
    provenance = {"model_type": f"{cfg.model_type} ({CONFIG} type or weight names)", "statistics": stats_source}
    if openpi is not None:
        provenance["openpi_config"] = f"{openpi.name} ({openpi.source()})"
    provenance.update(profile.describe())
    LOG.info("π₀ checkpoint %s:\n%s", folder, "\n".join(f"  {k} = {v}" for k, v in provenance.items()))
    for warning in profile.warnings:  # read but not understood: say so once, at load
        LOG.warning("π₀ checkpoint %s: %s", folder, warning)
    return LoadedCheckpoint(cfg, profile, settings, stats, tokenizer, provenance)


def _openpi_config(folder: Path, settings: Pi0Settings, cfg: Pi0Config) -> OpenpiConfig | None:
    """The settings' openpi config, checked against the checkpoint (BackendError naming both sources); None
    without one, after logging a hint when the folder's norm-stats assets are a known config's."""
    if settings.openpi_config is None:
        if (folder / "assets").is_dir():
            model = "pi05" if cfg.pi05 else "pi0"
            for asset, names in configs_for_assets(folder, model).items():
                LOG.warning(
                    "π₀ checkpoint %s: assets/%s holds the norm stats of openpi config(s) %s; if the checkpoint is "
                    "one of them, set `openpi_config: <name>` (pi0.yaml) to take its action space, relative dims, "
                    "dt_s and camera slots (vla_ros/backends/pi0/openpi_configs.py): nothing is assumed without it",
                    folder,
                    asset,
                    ", ".join(names),
                )
        return None
    try:
        openpi = lookup(settings.openpi_config)
    except ValueError as exc:
        raise BackendError(f"π₀ backend ({settings.source}): {exc}") from exc
    where = f"{settings.source}: openpi_config {openpi.name}"
    if openpi.unsupported:
        raise BackendError(f"{where}: not supported by the π₀ backend: {openpi.unsupported} ({openpi.source()})")
    if settings.origin not in (None, "openpi"):
        raise BackendError(f"{settings.source}: origin {settings.origin!r} contradicts {openpi.source()}: remove one")
    model = "pi05" if cfg.pi05 else "pi0"
    if model != openpi.model:
        raise BackendError(
            f"{where}: {openpi.source()} is a {openpi.model} model but the checkpoint {folder} is {model} "
            f"({CONFIG} type or weight names)"
        )
    if cfg.action_horizon != openpi.action_horizon:
        raise BackendError(
            f"{where}: {folder / CONFIG} action_horizon {cfg.action_horizon} contradicts {openpi.source()}, "
            f"action_horizon {openpi.action_horizon}: is it the config the checkpoint was trained with?"
        )
    for caveat in openpi.caveats:
        LOG.warning("π₀ checkpoint %s, %s: %s", folder, openpi.source(), caveat)
    return openpi


def build_model(cfg: Pi0Config, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Pi0Model:
    """Random-weight model built directly on `device`, transformer stacks in `dtype`, for inference
    (eval mode, no parameter gradients: RTC guidance differentiates with respect to the actions only)."""
    with torch.device(device):
        model = Pi0Model(cfg)
    return model.set_dtype(dtype).eval().requires_grad_(False)
