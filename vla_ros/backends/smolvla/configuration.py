"""SmolVLA model configuration: LeRobot's `config.json` (type smolvla) and the SmolVLM2 config it names.

LeRobot 0.6.1 (`policies/smolvla/configuration_smolvla.py`) saves every field of `SmolVLAConfig`; the
VLM backbone is named only (`vlm_model_name`, read from the hub by LeRobot). Offline, the VLM's own
`config.json` must be given: `vlm_config.json` in the checkpoint folder, or the `vlm` setting pointing
at a local SmolVLM2 folder (checkpoint.py decides which). From the two this module derives what LeRobot
builds (`smolvlm_with_expert.SmolVLMWithExpertModel`):

- the VLM: SmolVLM2's vision transformer and connector, and its language model cut to the first
  `num_vlm_layers` layers;
- the action expert: a copy of the language model's config with width `hidden_size *
  expert_width_multiplier`, MLP width `get_intermediate_size` of that, as many layers as the cut VLM,
  the same heads and head size; in `cross_attn` mode every layer i with `i % self_attn_every_n_layers
  != 0` cross-attends to the VLM's keys/values, its k/v projections taking the VLM's k/v width.

Fields that change nothing at inference are accepted and ignored (training and optimiser settings,
`prefix_length`: padding tokens nobody attends, `rtc_config`: guidance is this package's own, from the
executor's plan, `compile_model`). Fields whose value this backend does not reproduce are refused with
their name and value (`refuse` below).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEROBOT_TYPE = "smolvla"
IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"
ATTENTION_MODES = ("cross_attn", "self_attn")
PADDINGS = ("longest", "max_length")
VLM_TYPE = "smolvlm"
TEXT_TYPE = "llama"  # the layer structure (input/post-attention RMSNorm, q/k/v/o, gated MLP) the expert code uses


def get_intermediate_size(hidden_dim: int, ffn_dim_multiplier: int = 4, multiple_of: int = 256) -> int:
    """The action expert's MLP width for width `hidden_dim` (LeRobot's rule: 8/3 x, rounded up to 256)."""
    hidden_dim = int(2 * hidden_dim / 3)
    hidden_dim = int(ffn_dim_multiplier * hidden_dim)
    return multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)


@dataclass(frozen=True)
class SmolVLAConfig:
    """What LeRobot's `SmolVLAConfig` says about the network and its inputs (defaults: LeRobot 0.6.1's)."""

    state_dim: int  # observation.state width (input_features)
    action_dim: int  # action width (output_features); the chunk is cut to it
    cameras: tuple[str, ...]  # model cameras: VISUAL input_features without "observation.images.", then empty ones
    empty_cameras: int = 0  # trailing cameras that were always black and masked in training
    chunk_size: int = 50  # action tokens per chunk
    n_action_steps: int = 50
    max_state_dim: int = 32  # state padded to this (state_proj input)
    max_action_dim: int = 32  # actions padded to this (action_in/out_proj)
    resize: tuple[int, int] = (512, 512)  # resize_imgs_with_padding: (width, height), padded on the left and top
    tokenizer_max_length: int = 48
    pad_language_to: str = "longest"
    num_steps: int = 10  # Euler steps
    attention_mode: str = "cross_attn"
    num_expert_layers: int = -1
    num_vlm_layers: int = 16
    self_attn_every_n_layers: int = 2
    expert_width_multiplier: float = 0.75
    min_period: float = 4e-3  # sin/cos time embedding periods
    max_period: float = 4.0
    vlm_model_name: str = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    normalization_mapping: dict = field(
        default_factory=lambda: {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}
    )
    vlm: Any = field(default=None, compare=False, repr=False)  # transformers SmolVLMConfig (with_vlm)

    @property
    def real_cameras(self) -> tuple[str, ...]:
        """The cameras that saw images in training (not the empty ones)."""
        return self.cameras[: len(self.cameras) - self.empty_cameras]

    # --- derived from the VLM config ------------------------------------------------------------

    @property
    def text(self):
        return self.vlm.text_config

    @property
    def layers(self) -> int:
        """VLM layers kept (LeRobot slices `layers[:num_vlm_layers]`; <= 0 keeps all)."""
        total = self.text.num_hidden_layers
        return min(self.num_vlm_layers, total) if self.num_vlm_layers > 0 else total

    def self_attention_layer(self, i: int) -> bool:
        """Whether layer i is joint self-attention (else the expert cross-attends to the VLM's keys/values)."""
        every = self.self_attn_every_n_layers
        return self.attention_mode == "self_attn" or (every > 0 and i % every == 0)

    def expert_config(self):
        """The action expert's transformers config, derived from the language model's as LeRobot does."""
        expert = copy.deepcopy(self.text)
        width = int(self.text.hidden_size * self.expert_width_multiplier)
        expert.hidden_size = width
        expert.intermediate_size = get_intermediate_size(width)
        expert.num_hidden_layers = self.layers
        expert.vocab_size = 1  # LeRobot drops the expert's token embedding: do not build it at full size
        expert.pad_token_id = None
        if getattr(expert, "layer_types", None) is not None:
            expert.layer_types = list(expert.layer_types)[: self.layers]
        return expert

    def text_config(self):
        """The language model's config cut to `layers` layers."""
        text = copy.deepcopy(self.text)
        text.num_hidden_layers = self.layers
        if getattr(text, "layer_types", None) is not None:
            text.layer_types = list(text.layer_types)[: self.layers]
        return text

    def with_vlm(self, vlm, where: str) -> SmolVLAConfig:
        """This config with the VLM's transformers config; ValueError naming `where` (the two files) when they do
        not fit."""
        check_vlm(vlm, where)
        cfg = dataclasses.replace(self, vlm=vlm)
        if self.num_expert_layers > 0 and self.num_expert_layers != cfg.layers:
            raise ValueError(
                f"{where}: num_expert_layers {self.num_expert_layers} differs from the {cfg.layers} VLM layers kept: "
                "LeRobot 0.6.1 maps such experts onto the VLM inconsistently (its denoising fails); not supported"
            )
        width = int(cfg.text.hidden_size * self.expert_width_multiplier)
        if width < 1:
            raise ValueError(f"{where}: expert_width_multiplier {self.expert_width_multiplier} leaves no expert width")
        return cfg

    # --- reading LeRobot's config.json -----------------------------------------------------------

    @classmethod
    def from_json(cls, raw: Any, where: str = "config.json") -> SmolVLAConfig:
        """LeRobot's config.json -> config; ValueError naming `where` and the key for what is refused."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        kind = raw.get("type")
        if kind != LEROBOT_TYPE:
            hint = " (π₀ / π₀.5 checkpoints: backend:=pi0)" if kind in ("pi0", "pi05") else ""
            raise ValueError(f"{where}: type is {kind!r}; this backend loads LeRobot 'smolvla' checkpoints{hint}")
        refuse(raw, where)
        kw: dict[str, Any] = {}
        for name in (
            "chunk_size",
            "n_action_steps",
            "max_state_dim",
            "max_action_dim",
            "tokenizer_max_length",
            "num_steps",
            "num_vlm_layers",
            "self_attn_every_n_layers",
        ):
            if name in raw:
                kw[name] = _int(raw[name], name, where, minimum=1 if name != "self_attn_every_n_layers" else None)
        if "num_expert_layers" in raw:
            kw["num_expert_layers"] = _int(raw["num_expert_layers"], "num_expert_layers", where)
        for name in ("expert_width_multiplier", "min_period", "max_period"):
            if name in raw:
                kw[name] = _number(raw[name], name, where)
        if "empty_cameras" in raw:
            kw["empty_cameras"] = _int(raw["empty_cameras"], "empty_cameras", where, minimum=0)
        for name, choices in (("attention_mode", ATTENTION_MODES), ("pad_language_to", PADDINGS)):
            if name in raw and raw[name] not in choices:
                raise ValueError(f"{where}: {name} {raw[name]!r} is not supported (supported: {list(choices)})")
            if name in raw:
                kw[name] = raw[name]
        if "vlm_model_name" in raw:
            kw["vlm_model_name"] = str(raw["vlm_model_name"])
        resize = raw.get("resize_imgs_with_padding", [512, 512])
        if not (
            isinstance(resize, list)
            and len(resize) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resize)
        ):
            raise ValueError(
                f"{where}: resize_imgs_with_padding must be [width, height] (LeRobot's default [512, 512]), got "
                f"{resize!r}; images fed at their own size are not supported"
            )
        kw["resize"] = tuple(resize)
        if "normalization_mapping" in raw:
            mapping = raw["normalization_mapping"]
            if not isinstance(mapping, dict):
                raise ValueError(f"{where}: normalization_mapping must map feature types to modes, got {mapping!r}")
            kw["normalization_mapping"] = dict(mapping)
        features = raw.get("input_features") or {}
        outputs = raw.get("output_features") or {}
        if not isinstance(features, dict) or not isinstance(outputs, dict):
            raise ValueError(f"{where}: input_features / output_features must be mappings")
        kw["state_dim"] = _feature_width(features, STATE_KEY, "STATE", where, "input_features")
        kw["action_dim"] = _feature_width(outputs, ACTION_KEY, "ACTION", where, "output_features")
        cameras = [k.removeprefix(IMAGE_PREFIX) for k, v in features.items() if _type(v) == "VISUAL"]
        empty = kw.get("empty_cameras", 0)
        # LeRobot adds observation.images.empty_camera_i to input_features (validate_features), saved or not
        real = [c for c in cameras if c not in {f"empty_camera_{i}" for i in range(empty)}]
        if not real:
            raise ValueError(f"{where}: input_features has no VISUAL feature (SmolVLA needs at least one camera)")
        kw["cameras"] = tuple(real + [f"empty_camera_{i}" for i in range(empty)])
        try:
            cfg = cls(**kw)
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        for name in ("state_dim", "action_dim"):
            limit = "max_state_dim" if name == "state_dim" else "max_action_dim"
            if getattr(cfg, name) > getattr(cfg, limit):
                raise ValueError(f"{where}: {name} {getattr(cfg, name)} exceeds {limit} {getattr(cfg, limit)}")
        if not 0 < cfg.min_period < cfg.max_period:
            raise ValueError(f"{where}: need 0 < min_period < max_period, got {cfg.min_period}, {cfg.max_period}")
        return cfg

    @classmethod
    def load(cls, path: Path) -> SmolVLAConfig:
        return cls.from_json(read_json(path), str(path))


# (key, value LeRobot reproduces here) -> why another value is refused
_REFUSED = {
    "n_obs_steps": (1, "observation histories are not supported"),
    "adapt_to_pi_aloha": (False, "the π-internal ALOHA joint/gripper conversion is not reproduced"),
    "use_delta_joint_actions_aloha": (False, "LeRobot itself refuses it"),
    "add_image_special_tokens": (False, "image special tokens around the image embeddings are not reproduced"),
    "use_cache": (True, "LeRobot 0.6.1's denoising without the prefix cache does not run in cross_attn mode"),
}


def refuse(raw: dict, where: str) -> None:
    """ValueError naming the first LeRobot field whose value this backend does not reproduce."""
    for key, (supported, why) in _REFUSED.items():
        if key in raw and raw[key] != supported:
            raise ValueError(f"{where}: {key} is {raw[key]!r}: not supported ({why}; supported: {supported!r})")


def check_vlm(vlm, where: str) -> None:
    """ValueError unless `vlm` is a SmolVLM config whose language model has the Llama layer structure."""
    kind = getattr(vlm, "model_type", None)
    if kind != VLM_TYPE:
        raise ValueError(f"{where}: model_type {kind!r}; SmolVLA's backbone is a SmolVLM2 ('{VLM_TYPE}') config")
    text_kind = getattr(vlm.text_config, "model_type", None)
    if text_kind != TEXT_TYPE:
        raise ValueError(f"{where}: text_config.model_type {text_kind!r}; supported: '{TEXT_TYPE}' (SmolVLM2's)")
    text = vlm.text_config
    if text.num_attention_heads % text.num_key_value_heads:
        raise ValueError(
            f"{where}: num_attention_heads {text.num_attention_heads} not a multiple of "
            f"num_key_value_heads {text.num_key_value_heads}"
        )


def vlm_config_from_json(raw: Any, where: str):
    """transformers' SmolVLMConfig from a SmolVLM2 `config.json`; ValueError naming `where`."""
    from transformers import SmolVLMConfig

    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("model_type") != VLM_TYPE:
        raise ValueError(
            f"{where}: model_type {raw.get('model_type')!r}; SmolVLA's backbone is a SmolVLM2 ('{VLM_TYPE}') config"
        )
    try:
        vlm = SmolVLMConfig.from_dict(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{where}: not a SmolVLM config transformers can read ({exc})") from exc
    check_vlm(vlm, where)
    return vlm


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def _type(feature: Any) -> str | None:
    return feature.get("type") if isinstance(feature, dict) else None


def _feature_width(features: dict, key: str, kind: str, where: str, section: str) -> int:
    feature = features.get(key)
    if _type(feature) != kind:
        raise ValueError(f"{where}: {section} has no {kind} feature '{key}' (found {sorted(features)})")
    shape = feature.get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int) and shape[0] > 0):
        raise ValueError(f"{where}: {section}.{key}.shape must be [width], got {shape!r}")
    return shape[0]


def _int(value: Any, name: str, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return value


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive number, got {value!r}")
    return float(value)
