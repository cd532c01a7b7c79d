"""Released Octo checkpoint (JAX: orbax params, the training `config.json`, `dataset_statistics.json`) ->
our checkpoint folder (`model.safetensors`, `config.json` as OctoNetConfig, `dataset_statistics.json`).

Only reading the orbax params needs JAX/orbax (`pip install -r requirements-convert.txt`); the key and
layout mapping is plain NumPy. Flax layouts: Dense kernels (in, out) transpose; conv kernels (H, W, in, out)
-> (out, in, H, W); attention q/k/v kernels (D, heads, head_dim) fuse into one (3 D, D) projection.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

TRANSFORMER = "octo_transformer"
BLOCKS = f"{TRANSFORMER}/BlockTransformer_0/Transformer_0"
HEAD = "heads_action/diffusion_model"
T5_PREFIX = f"{TRANSFORMER}/task_tokenizers_language/"
STEMS = {"SmallStem16": 16, "SmallStem32": 32, "SmallStem": None}


class ConversionError(ValueError):
    """The folder is not a released Octo checkpoint this converter understands (the message says why)."""


def read_orbax_params(folder: Path, step: int | None = None) -> dict[str, np.ndarray]:
    """The orbax params of checkpoint `folder` (its latest step, or `step`) as {'a/b/kernel': array}."""
    try:
        import orbax.checkpoint as ocp
    except ImportError as exc:
        raise ConversionError(
            "reading an orbax checkpoint needs JAX and orbax: pip install -r requirements-convert.txt"
        ) from exc
    steps = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not steps:
        raise ConversionError(f"{folder}: no orbax step folder (<step>/default) found")
    step = steps[-1] if step is None else step
    path = folder / str(step) / "default"
    if not path.is_dir():
        raise ConversionError(f"{folder}: no orbax params at {path}")
    tree = ocp.PyTreeCheckpointer().restore(str(path.resolve()))
    return flatten(tree)


def flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, dict):
        out: dict[str, np.ndarray] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}/"))
        return out
    return {prefix[:-1]: np.asarray(tree, dtype=np.float32)}


def _spec(spec: Any, where: str) -> tuple[str, dict]:
    """(class name, kwargs) of a ModuleSpec dict; ConversionError for what this converter does not build."""
    if not isinstance(spec, dict) or set(spec) != {"module", "name", "args", "kwargs"}:
        raise ConversionError(f"config.json: {where}: expected a ModuleSpec (module, name, args, kwargs), got {spec!r}")
    return spec["name"], dict(spec["kwargs"])


def net_config(raw: dict, params: dict[str, np.ndarray], action_space: dict | None = None):
    """OctoNetConfig from the reference's training config (`raw`) and the param shapes."""
    from vla_ros.backends.octo.configuration import ImageGroupConfig, OctoNetConfig

    if "model" not in raw:
        raise ConversionError("config.json: no 'model' section (not an Octo training config)")
    model = raw["model"]
    required = ("observation_tokenizers", "heads", "token_embedding_size", "transformer_kwargs", "max_horizon")
    missing = [k for k in required if k not in model]
    if missing:
        raise ConversionError(f"config.json: model lacks {missing}")
    resize = raw.get("dataset_kwargs", {}).get("frame_transform_kwargs", {}).get("resize_size", {})
    images = []
    for name, spec in model["observation_tokenizers"].items():
        cls, kw = _spec(spec, f"model.observation_tokenizers.{name}")
        if cls != "ImageTokenizer":
            raise ConversionError(f"config.json: observation tokenizer {name} is {cls}; supported: ImageTokenizer")
        enc, enc_kw = _spec(kw.get("encoder"), f"model.observation_tokenizers.{name}.encoder")
        if enc not in STEMS or enc_kw.get("use_film") or kw.get("use_token_learner") or kw.get("task_film_keys"):
            raise ConversionError(
                f"config.json: observation tokenizer {name}: encoder {enc} {enc_kw} not supported "
                f"(supported: {sorted(STEMS)} without FiLM or token learner)"
            )
        keys = list(kw.get("obs_stack_keys", []))
        if keys != [f"image_{name}"]:
            raise ConversionError(
                f"config.json: observation tokenizer {name}: obs_stack_keys {keys}, expected ['image_{name}']"
            )
        goal_keys = list(kw.get("task_stack_keys", []))
        if goal_keys not in ([], keys):
            raise ConversionError(
                f"config.json: observation tokenizer {name}: task_stack_keys {goal_keys} not supported"
            )
        if name not in resize:
            raise ConversionError(
                f"config.json: dataset_kwargs.frame_transform_kwargs.resize_size has no entry for camera {name!r} "
                f"(has {sorted(resize)})"
            )
        patch = enc_kw.get("patch_size", STEMS[enc] or 32)
        images.append(
            ImageGroupConfig(
                name=name,
                image_size=tuple(resize[name]),
                goal=bool(goal_keys),
                features=tuple(enc_kw.get("features", (32, 96, 192, 384))),
                num_features=enc_kw.get("num_features", 512),
                patch_size=patch,
            )
        )
    language = False
    for name, spec in model.get("task_tokenizers", {}).items():
        cls, kw = _spec(spec, f"model.task_tokenizers.{name}")
        if cls != "LanguageTokenizer" or name != "language":
            raise ConversionError(f"config.json: task tokenizer {name} ({cls}) not supported; supported: language")
        language = True
    head_cls, head = _spec(model["heads"].get("action"), "model.heads.action")
    if head_cls != "DiffusionActionHead" or head.get("use_map"):
        raise ConversionError(f"config.json: action head {head_cls} (use_map={head.get('use_map')}) not supported")
    if head.get("readout_key", "readout_action") != "readout_action" or set(model.get("readouts", {})) != {"action"}:
        raise ConversionError(f"config.json: readouts {model.get('readouts')} not supported (one 'action' readout)")
    tk = model["transformer_kwargs"]
    kwargs: dict[str, Any] = {}
    if language:
        kernel = params.get(f"{TRANSFORMER}/task_language_projection/kernel")
        if kernel is None:
            raise ConversionError(f"params: no {TRANSFORMER}/task_language_projection/kernel")
        kwargs["language_dim"] = int(kernel.shape[0])
        kwargs["language_tokens"] = int(params[f"{TRANSFORMER}/task_language_pos_embedding"].shape[1])
        kwargs["t5_name"] = model["task_tokenizers"]["language"]["kwargs"].get("encoder") or "t5-base"
    return OctoNetConfig(
        images=tuple(images),
        language=language,
        repeat_task_tokens=bool(model.get("repeat_task_tokens", False)),
        use_correct_attention=bool(model.get("use_correct_attention", False)),
        width=int(model["token_embedding_size"]),
        depth=int(tk["num_layers"]),
        num_heads=int(tk["num_attention_heads"]),
        mlp_dim=int(tk["mlp_dim"]),
        max_horizon=int(model["max_horizon"]),
        window_size=int(raw.get("window_size", 1)),
        readout_tokens=int(model["readouts"]["action"]),
        action_horizon=int(head.get("action_horizon", 1)),
        action_dim=int(head.get("action_dim", 7)),
        max_action=float(head.get("max_action", 5.0)),
        time_dim=int(head.get("time_dim", 32)),
        head_hidden=int(head.get("hidden_dim", 256)),
        head_blocks=int(head.get("num_blocks", 3)),
        head_layer_norm=bool(head.get("use_layer_norm", True)),
        diffusion_steps=int(head.get("diffusion_steps", 20)),
        action_space=dict(action_space or {}),
        **kwargs,
    )


def _dense(out: dict, prefix: str, params: dict, src: str) -> None:
    out[f"{prefix}.weight"] = params[f"{src}/kernel"].T
    out[f"{prefix}.bias"] = params[f"{src}/bias"]


def _norm(out: dict, prefix: str, params: dict, src: str) -> None:
    out[f"{prefix}.weight"] = params[f"{src}/scale"]
    out[f"{prefix}.bias"] = params[f"{src}/bias"]


def _conv(out: dict, prefix: str, params: dict, src: str) -> None:
    out[f"{prefix}.weight"] = params[f"{src}/kernel"].transpose(3, 2, 0, 1)
    out[f"{prefix}.bias"] = params[f"{src}/bias"]


def state_dict(params: dict[str, np.ndarray], cfg) -> tuple[dict[str, np.ndarray], list[str]]:
    """Our OctoNet state dict from the flat reference params, and the reference keys left unused
    (besides the T5 encoder's, which the runtime loads from its own folder). KeyError names a missing key."""
    p = {k: v for k, v in params.items() if not k.startswith(T5_PREFIX)}
    used: set[str] = set()

    class Tracking(dict):
        def __getitem__(self, key):
            if key not in p:
                raise KeyError(key)
            used.add(key)
            return p[key]

    src = Tracking()
    out: dict[str, np.ndarray] = {}
    t = TRANSFORMER
    for g in cfg.images:
        stem = f"{t}/observation_tokenizers_{g.name}"
        stem_name = next((k.split("/")[2] for k in p if k.startswith(stem + "/")), None)
        if stem_name is None:
            raise KeyError(f"{stem}/<encoder>")
        for i in range(len(g.features)):
            _conv(out, f"stems.{g.name}.convs.{3 * i}", src, f"{stem}/{stem_name}/StdConv_{i}")
            _norm(out, f"stems.{g.name}.convs.{3 * i + 1}", src, f"{stem}/{stem_name}/GroupNorm_{i}")
        _conv(out, f"stems.{g.name}.embedding", src, f"{stem}/{stem_name}/embedding")
        _dense(out, f"obs_projections.{g.name}", src, f"{t}/obs_{g.name}_projection")
        out[f"obs_pos.{g.name}"] = src[f"{t}/obs_{g.name}_pos_embedding"]
    if cfg.language:
        _dense(out, "language_projection", src, f"{t}/task_language_projection")
        out["language_pos"] = src[f"{t}/task_language_pos_embedding"]
    out["readout_pos"] = src[f"{t}/readout_action_pos_embedding"]
    for i in range(cfg.depth):
        b, o = f"{BLOCKS}/encoderblock_{i}", f"transformer.blocks.{i}"
        _norm(out, f"{o}.norm1", src, f"{b}/LayerNorm_0")
        _norm(out, f"{o}.norm2", src, f"{b}/LayerNorm_1")
        att = f"{b}/MultiHeadDotProductAttention_0"
        qkv = [src[f"{att}/{n}/kernel"] for n in ("query", "key", "value")]
        out[f"{o}.attn.qkv.weight"] = np.concatenate([k.reshape(k.shape[0], -1) for k in qkv], 1).T
        biases = [src[f"{att}/{n}/bias"].reshape(-1) for n in ("query", "key", "value")]
        out[f"{o}.attn.qkv.bias"] = np.concatenate(biases)
        kernel = src[f"{att}/out/kernel"]
        out[f"{o}.attn.out.weight"] = kernel.reshape(-1, kernel.shape[-1]).T
        out[f"{o}.attn.out.bias"] = src[f"{att}/out/bias"]
        _dense(out, f"{o}.mlp.0", src, f"{b}/MlpBlock_0/Dense_0")
        _dense(out, f"{o}.mlp.2", src, f"{b}/MlpBlock_0/Dense_1")
    _norm(out, "transformer.norm", src, f"{BLOCKS}/encoder_norm")
    out["head.time_features.kernel"] = src[f"{HEAD}/time_preprocess/kernel"]
    _dense(out, "head.time_mlp.0", src, f"{HEAD}/cond_encoder/Dense_0")
    _dense(out, "head.time_mlp.2", src, f"{HEAD}/cond_encoder/Dense_1")
    _dense(out, "head.net.inp", src, f"{HEAD}/reverse_network/Dense_0")
    for i in range(cfg.head_blocks):
        blk = f"{HEAD}/reverse_network/MLPResNetBlock_{i}"
        if cfg.head_layer_norm:
            _norm(out, f"head.net.blocks.{i}.net.1", src, f"{blk}/LayerNorm_0")
        _dense(out, f"head.net.blocks.{i}.net.2", src, f"{blk}/Dense_0")
        _dense(out, f"head.net.blocks.{i}.net.4", src, f"{blk}/Dense_1")
    _dense(out, "head.net.out.1", src, f"{HEAD}/reverse_network/Dense_1")
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
    return out, sorted(set(p) - used)


def t5_state_dict(params: dict[str, np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
    """A Flax T5 encoder's flat params (transformers' FlaxT5EncoderModel names, under `prefix`) as the
    state dict of transformers' PyTorch T5EncoderModel (Dense kernels transpose; embeddings tied)."""
    p = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    out = {"shared.weight": p["shared/embedding"], "encoder.embed_tokens.weight": p["shared/embedding"]}
    out["encoder.final_layer_norm.weight"] = p["encoder/final_layer_norm/weight"]
    blocks = sorted({int(k.split("/")[2]) for k in p if k.startswith("encoder/block/")})
    for i in blocks:
        src, dst = f"encoder/block/{i}/layer", f"encoder.block.{i}.layer"
        for n in ("q", "k", "v", "o"):
            out[f"{dst}.0.SelfAttention.{n}.weight"] = p[f"{src}/0/SelfAttention/{n}/kernel"].T
        bias = p.get(f"{src}/0/SelfAttention/relative_attention_bias/embedding")
        if bias is not None:
            out[f"{dst}.0.SelfAttention.relative_attention_bias.weight"] = bias
        out[f"{dst}.0.layer_norm.weight"] = p[f"{src}/0/layer_norm/weight"]
        for n in ("wi", "wo"):
            out[f"{dst}.1.DenseReluDense.{n}.weight"] = p[f"{src}/1/DenseReluDense/{n}/kernel"].T
        out[f"{dst}.1.layer_norm.weight"] = p[f"{src}/1/layer_norm/weight"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def load_reference_json(folder: Path) -> tuple[dict, dict]:
    """The folder's training config and dataset statistics; ConversionError if it is not an Octo folder."""
    if not folder.is_dir():
        raise ConversionError(f"{folder}: not a folder")
    missing = [n for n in ("config.json", "dataset_statistics.json") if not (folder / n).is_file()]
    if missing:
        raise ConversionError(
            f"{folder} is not an Octo checkpoint folder: missing {missing} (expected config.json, "
            "dataset_statistics.json and orbax <step>/default/)"
        )
    try:
        raw = json.loads((folder / "config.json").read_text())
        stats = json.loads((folder / "dataset_statistics.json").read_text())
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{folder}: {exc}") from exc
    return raw, stats


def convert_params(raw: dict, params: dict[str, np.ndarray], action_space: dict | None = None):
    """(OctoNetConfig, state dict) from a training config and flat params; one ConversionError listing
    every missing and unused key."""
    cfg = net_config(raw, params, action_space)
    try:
        weights, unused = state_dict(params, cfg)
    except KeyError as exc:
        raise ConversionError(f"params: missing {exc.args[0]} for the config's architecture") from exc
    if unused:
        raise ConversionError(f"params: keys the architecture does not use: {unused}")
    return cfg, weights


def convert_folder(folder: Path, out: Path, action_space: dict | None = None, step: int | None = None) -> Path:
    """Write our checkpoint for released Octo checkpoint `folder` into `out`; returns `out`."""
    raw, _ = load_reference_json(folder)
    cfg, weights = convert_params(raw, read_orbax_params(folder, step), action_space)
    return write_converted(out, cfg, weights, folder / "dataset_statistics.json")


def write_converted(out: Path, cfg, weights: dict[str, np.ndarray], statistics: Path) -> Path:
    """model.safetensors, config.json (OctoNetConfig) and a copy of `statistics` into `out`."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / "model.safetensors"))
    cfg.save(out / "config.json")
    shutil.copy(statistics, out / "dataset_statistics.json")
    return out


def main(args) -> int:
    """`vla-ros convert octo <folder> <out>`: prints what was written, or the error (exit 1)."""
    import sys

    space = {"preset": args.action_space} if args.action_space else None
    try:
        out = convert_folder(args.folder, args.out, space, args.step)
    except ConversionError as exc:
        print(f"vla-ros convert octo: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}/model.safetensors, config.json, dataset_statistics.json")
    return 0


if __name__ == "__main__":  # python -m vla_ros.backends.octo.convert <folder> <out> (the converter's own env)
    import argparse
    import sys

    cli = argparse.ArgumentParser(description="convert a released Octo checkpoint for the runtime")
    cli.add_argument("folder", type=Path)
    cli.add_argument("out", type=Path)
    cli.add_argument("--step", type=int, default=None)
    cli.add_argument("--action-space", default=None)
    sys.exit(main(cli.parse_args()))
