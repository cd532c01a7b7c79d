"""π₀ checkpoint folder: real key layout round trip, config flavours, statistics, clear errors."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_ros.backends.base import BackendError
from vla_ros.backends.pi0.checkpoint import (
    EMBED_KEY,
    build_model,
    load_stats,
    load_weights,
    save_weights,
)
from vla_ros.backends.pi0.configuration import GEMMA_VARIANTS, SO400M_14, Pi0Config
from vla_ros.backends.pi0.settings import Pi0Settings


def velocity_of(model, inputs):
    with torch.no_grad():
        cache = model.prefill(
            *model.embed_prefix(inputs["images"], inputs["image_valid"], inputs["tokens"], inputs["token_valid"])
        )
        return model.velocity(cache, inputs["state"], inputs["x"], torch.full((2,), 0.3))


def fresh(cfg, seed):
    torch.manual_seed(seed)
    return build_model(cfg)


@pytest.mark.parametrize("prefix", ["", "model."])
def test_save_load_reproduces_outputs_exactly(tmp_path, tiny_cfg, tiny_model, tiny_inputs, prefix):
    save_weights(tmp_path / "model.safetensors", tiny_model, key_prefix=prefix)
    tops = tuple(prefix + top for top in ("paligemma_with_expert.", "state_proj.", "action_"))
    assert all(k.startswith(tops) for k in load_file(tmp_path / "model.safetensors"))
    other = fresh(tiny_cfg, 1)
    assert not torch.equal(velocity_of(other, tiny_inputs), velocity_of(tiny_model, tiny_inputs))
    load_weights(tmp_path / "model.safetensors", other)
    assert torch.equal(velocity_of(other, tiny_inputs), velocity_of(tiny_model, tiny_inputs))


def test_converter_layout_with_tied_lm_head_and_unused_expert_head_loads(tmp_path, tiny_cfg, tiny_model, tiny_inputs):
    weights = dict(tiny_model.state_dict())
    weights["paligemma_with_expert.paligemma.lm_head.weight"] = weights.pop(EMBED_KEY)  # safetensors kept the tied name
    weights["paligemma_with_expert.gemma_expert.lm_head.weight"] = torch.zeros(
        tiny_cfg.vocab_size, tiny_cfg.action_expert.width
    )
    save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp_path / "model.safetensors"))
    other = fresh(tiny_cfg, 2)
    load_weights(tmp_path / "model.safetensors", other)
    assert torch.equal(velocity_of(other, tiny_inputs), velocity_of(tiny_model, tiny_inputs))


def test_loading_into_bfloat16_casts(tmp_path, tiny_cfg, tiny_model):
    save_weights(tmp_path / "model.safetensors", tiny_model)
    model = build_model(tiny_cfg, dtype=torch.bfloat16)
    load_weights(tmp_path / "model.safetensors", model)
    key = "paligemma_with_expert.gemma_expert.model.layers.0.mlp.up_proj.weight"
    assert model.state_dict()[key].dtype == torch.bfloat16
    torch.testing.assert_close(model.state_dict()[key].float(), tiny_model.state_dict()[key], rtol=1e-2, atol=1e-2)


def corrupt(tmp_path, tiny_model, edit):
    weights = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    edit(weights)
    save_file(weights, str(tmp_path / "model.safetensors"))
    return tmp_path / "model.safetensors"


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda w: w.pop("paligemma_with_expert.gemma_expert.model.layers.1.mlp.down_proj.weight"),
            r"missing keys \['paligemma_with_expert.gemma_expert.model.layers.1.mlp.down_proj.weight'\]",
        ),
        (
            lambda w: w.__setitem__("state_proj.weight", torch.zeros(32, 7)),
            r"wrong shapes \['state_proj.weight: \(32, 7\) != \(32, 32\)'\]",
        ),
        (lambda w: w.__setitem__("time_mlp_in.weight", torch.zeros(2)), r"unexpected keys \['time_mlp_in.weight'\]"),
    ],
)
def test_mismatched_weights_fail_with_one_clear_error_and_no_partial_copy(
    tmp_path, tiny_cfg, tiny_model, edit, message
):
    path = corrupt(tmp_path, tiny_model, edit)
    model = fresh(tiny_cfg, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BackendError, match=message):
        load_weights(path, model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_not_a_safetensors_file(tmp_path, tiny_cfg):
    (tmp_path / "model.safetensors").write_bytes(b"nonsense")
    with pytest.raises(BackendError, match="safetensors"):
        load_weights(tmp_path / "model.safetensors", fresh(tiny_cfg, 0))


def test_config_json_flavours():
    openpi = Pi0Config.from_json(
        {
            "action_dim": 32,
            "action_horizon": 50,
            "paligemma_variant": "gemma_2b",
            "action_expert_variant": "gemma_300m",
            "precision": "bfloat16",
        }
    )
    assert (
        openpi.paligemma == GEMMA_VARIANTS["gemma_2b"]
        and openpi.action_expert.width == 1024
        and openpi.vision == SO400M_14
    )
    assert openpi.prefix_len == 3 * 256 + 48 and openpi.extra == {"precision": "bfloat16"}
    lerobot = Pi0Config.from_json(
        {
            "type": "pi0",
            "chunk_size": 10,
            "max_state_dim": 32,
            "max_action_dim": 32,
            "tokenizer_max_length": 24,
            "image_resolution": [224, 224],
            "n_obs_steps": 1,
            "input_features": {},
        }
    )
    assert (lerobot.action_horizon, lerobot.max_token_len, lerobot.vision.num_tokens) == (10, 24, 256)
    pi05 = Pi0Config.from_json({"type": "pi05", "min_period": 0.01, "max_period": 2.0})
    assert pi05.pi05 and pi05.max_token_len == 200 and (pi05.time_min_period, pi05.time_max_period) == (0.01, 2.0)
    assert Pi0Config.from_json({"action_horizon": 10}, pi05=True).pi05  # openpi's converter names no type
    with pytest.raises(ValueError, match="type is 'pi0_fast'"):
        Pi0Config.from_json({"type": "pi0_fast"})
    with pytest.raises(ValueError, match="paligemma_variant 'gemma_7b'"):
        Pi0Config.from_json({"paligemma_variant": "gemma_7b"})
    with pytest.raises(ValueError, match="x.json: chunk_size must be an integer"):
        Pi0Config.from_json({"chunk_size": "50"}, "x.json")


def test_own_config_round_trips(tmp_path, tiny_cfg):
    tiny_cfg.save(tmp_path / "config.json")
    assert Pi0Config.load(tmp_path / "config.json") == tiny_cfg


def test_norm_stats_sources(tmp_path):
    stats = {
        "state": {"mean": [1.0, 2.0], "std": [0.5, 0.5], "q01": [0, 0], "q99": [3, 3]},
        "actions": {"mean": [0.0, 0.0], "std": [2.0, 2.0]},
    }
    (tmp_path / "assets" / "my_robot").mkdir(parents=True)
    (tmp_path / "assets" / "my_robot" / "norm_stats.json").write_text(json.dumps({"norm_stats": stats}))
    loaded, source = load_stats(tmp_path)
    assert (
        loaded["state"]["mean"] == [1.0, 2.0]
        and loaded["action"]["std"] == [2.0, 2.0]
        and loaded["state"]["q99"] == [3, 3]
    )
    assert source.endswith("assets/my_robot/norm_stats.json")
    (tmp_path / "assets" / "other").mkdir()
    shutil.copy(tmp_path / "assets" / "my_robot" / "norm_stats.json", tmp_path / "assets" / "other")
    with pytest.raises(BackendError, match="several statistics"):
        load_stats(tmp_path)
    assert load_stats(tmp_path, "assets/other/norm_stats.json")[0]["state"]["mean"] == [1.0, 2.0]


def test_lerobot_normalizer_stats(tmp_path):
    t = {
        "observation.state.mean": torch.tensor([0.5, 0.1]),
        "observation.state.std": torch.tensor([2.0, 1.0]),
        "observation.images.base_0_rgb.mean": torch.zeros(3, 1, 1),
    }
    save_file(t, str(tmp_path / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    save_file(
        {"action.mean": torch.tensor([0.0, 1.0]), "action.std": torch.tensor([1.0, 3.0])},
        str(tmp_path / "policy_postprocessor_step_0_unnormalizer_processor.safetensors"),
    )
    stats, _ = load_stats(tmp_path)
    np.testing.assert_allclose(stats["state"]["mean"], [0.5, 0.1])
    np.testing.assert_allclose(stats["action"]["std"], [1.0, 3.0])
    assert "images" not in str(sorted(stats["state"]))


def test_missing_or_broken_stats(tmp_path):
    with pytest.raises(BackendError, match="no normalization statistics"):
        load_stats(tmp_path)
    (tmp_path / "norm_stats.json").write_text(json.dumps({"norm_stats": {"state": {"mean": [0.0]}}}))
    with pytest.raises(BackendError, match="norm_stats.actions"):
        load_stats(tmp_path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("joints: [a, b]\ncameras: {base_0_rgb: front}\nrelative_joints: [c]\n", r"pi0.yaml: relative_joints: \['c'\]"),
        (
            "joints: [a]\ncameras: {base_0_rgb: front}\nsteps: ten\n",
            "pi0.yaml: steps: input should be a valid integer, got 'ten'",
        ),
        ("joints: [a]\ncameras: {base_0_rgb: front}\nspeed: 3\n", r"pi0.yaml: unknown keys \['speed'\]"),
        ("joints: [a]\ncameras: {base_0_rgb: 3}\n", r"pi0.yaml: cameras.base_0_rgb: input should be a valid string"),
        ("joints: [a]\ndelta_joints: []\n", "pi0.yaml: delta_joints: renamed; write relative_joints"),
    ],
)
def test_settings_errors_name_file_and_key(tmp_path, text, match):
    path = tmp_path / "pi0.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        Pi0Settings.load(path)


def test_unknown_slots_are_named():
    settings = Pi0Settings(joints=("a",), cameras={"top_rgb": "front"})
    with pytest.raises(ValueError, match=r"cameras: unknown π₀ slots \['top_rgb'\]"):
        settings.check_slots(("base_0_rgb",))


def test_bundled_settings_file_is_valid():
    """The package's defaults name no robot's joints or cameras: those come from the robot config."""
    from vla_ros.paths import default_config_dir

    settings = Pi0Settings.load(default_config_dir() / "backends" / "pi0.yaml")
    assert settings.joints == () and settings.cameras is None and settings.steps is None and settings.origin is None
