"""Checkpoint origin (openpi | LeRobot): detection, the profile read from the folder's files, normalisation."""

import json
import shutil

import numpy as np
import pytest

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.normalization import Normalizer
from vla_ros.backends.pi0.checkpoint import load_config, save_weights
from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.origin import detect_origin, read_profile
from vla_ros.backends.pi0.tiny import make_tiny_checkpoint, tiny_config
from vla_ros.backends.pi0.tokenizer import PaligemmaTokenizer, discretize_state
from vla_ros.sim.tabletop import JOINT_NAMES


def _lerobot_config(folder, **fields):
    raw = {
        "type": "pi05",
        "input_features": {
            "observation.images.top": {"type": "VISUAL", "shape": [3, 224, 224]},
            "observation.state": {"type": "STATE", "shape": [7]},
            "observation.images.wrist": {"type": "VISUAL", "shape": [3, 224, 224]},
        },
        **fields,
    }
    (folder / "config.json").write_text(json.dumps(raw))
    return raw


def test_detect_origin_from_the_files(tmp_path):
    assert detect_origin(tmp_path, "lerobot") == ("lerobot", "origin setting")
    with pytest.raises(ValueError, match="origin: must be one of"):
        detect_origin(tmp_path, "jax")
    with pytest.raises(ValueError, match="cannot tell whether"):
        detect_origin(tmp_path)
    (tmp_path / "assets" / "droid").mkdir(parents=True)
    (tmp_path / "assets" / "droid" / "norm_stats.json").write_text("{}")
    assert detect_origin(tmp_path) == ("openpi", "detected: assets/droid/norm_stats.json")
    (tmp_path / "policy_preprocessor.json").write_text("{}")
    assert detect_origin(tmp_path)[0] == "lerobot"
    only_config = tmp_path / "c"
    only_config.mkdir()
    _lerobot_config(only_config)
    assert detect_origin(only_config)[0] == "lerobot"


def test_lerobot_profile_reads_the_checkpoint_files(tmp_path):
    raw = _lerobot_config(
        tmp_path,
        num_inference_steps=7,
        min_period=0.01,
        max_period=2.0,
        empty_cameras=1,
        normalization_mapping={"STATE": "MEAN_STD", "ACTION": "IDENTITY", "VISUAL": "IDENTITY"},
    )
    steps = [
        {
            "registry_name": "normalizer_processor",
            "config": {"eps": 1e-5, "norm_map": {"STATE": "MIN_MAX", "ACTION": "QUANTILES"}},
        }
    ]
    cfg = load_config_from(tmp_path, raw)
    profile = read_profile(tmp_path, cfg, "lerobot", "test")
    assert profile.image_slots == ("top", "wrist", "empty_camera_0")  # input_features order, then empty cameras
    assert (profile.steps, profile.time_min_period, profile.time_max_period) == (7, 0.01, 2.0)
    assert (profile.state_norm, profile.action_norm, profile.eps) == ("mean_std", "identity", 1e-8)
    assert profile.sources["state_norm"].endswith("config.json:normalization_mapping.STATE")
    (tmp_path / "policy_preprocessor.json").write_text(json.dumps({"steps": steps}))  # the pipeline that ran wins
    profile = read_profile(tmp_path, cfg, "lerobot", "test")
    assert (profile.state_norm, profile.action_norm, profile.eps) == ("min_max", "quantiles", 1e-5)
    assert profile.sources["eps"].endswith("policy_preprocessor.json:eps")
    openpi = read_profile(tmp_path, cfg, "openpi", "test")
    assert (openpi.steps, openpi.state_norm, openpi.eps, openpi.resize) == (10, "quantiles", 1e-6, "pil_bilinear")


def load_config_from(folder, raw):
    from vla_ros.backends.pi0.configuration import Pi0Config

    return Pi0Config.from_json(raw, str(folder / "config.json"))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_inference_steps", 0, "num_inference_steps must be a positive integer"),
        ("normalization_mapping", {"STATE": "LOG"}, "unknown normalisation mode 'LOG'"),
        ("empty_cameras", -1, "empty_cameras must be a non-negative integer"),
    ],
)
def test_bad_lerobot_values_are_named(tmp_path, field, value, message):
    raw = _lerobot_config(tmp_path, **{field: value})
    with pytest.raises(ValueError, match=message):
        read_profile(tmp_path, load_config_from(tmp_path, raw), "lerobot", "test")


def test_normalisation_per_origin():
    stats = {"mean": [1.0, 0.0], "std": [2.0, 0.5], "q01": [-1.0, 3.0], "q99": [1.0, 3.0], "mask": [True, False]}
    x = np.array([2.0, 3.0])
    openpi = Normalizer.from_stats(stats, "mean_std", "eps_added", 1e-6, 2, "s")
    lerobot = Normalizer.from_stats(stats, "mean_std", "lerobot", 1e-8, 2, "s")
    assert (
        openpi.normalize(x)[0] == pytest.approx(1 / (2 + 1e-6), abs=0) and openpi.normalize(x)[1] == 3.0
    )  # masked dim raw
    assert lerobot.normalize(x)[0] == pytest.approx(1 / (2 + 1e-8), abs=0)
    assert lerobot.unnormalize(np.array([1.0, 0.0]))[0] == 3.0  # plain std on the way back
    assert openpi.unnormalize(np.array([1.0, 0.0]))[0] == pytest.approx(3.0 + 1e-6, abs=0)
    q_openpi = Normalizer.from_stats({k: stats[k] for k in ("q01", "q99")}, "quantiles", "eps_added", 1e-6, 2, "s")
    q_lerobot = Normalizer.from_stats({k: stats[k] for k in ("q01", "q99")}, "quantiles", "lerobot", 1e-8, 2, "s")
    np.testing.assert_allclose(q_openpi.normalize(np.array([1.0, 3.0])), [1 - 2e-6 / 2, -1.0], atol=1e-9)
    np.testing.assert_allclose(q_lerobot.normalize(np.array([1.0, 3.0])), [1.0, -1.0])  # zero range -> eps, maps to -1
    for n in (q_openpi, q_lerobot, openpi, lerobot):
        np.testing.assert_allclose(n.unnormalize(n.normalize(np.array([0.3, 3.0]))), [0.3, 3.0], atol=1e-9)
    assert Normalizer.from_stats({}, "identity", "lerobot", 1e-8, 2, "s").normalize(x) is not None
    with pytest.raises(
        ValueError, match=r"s: quantiles normalisation needs \['q01', 'q99'\], missing \['q01', 'q99'\]"
    ):
        Normalizer.from_stats({"mean": [0.0], "std": [1.0]}, "quantiles", "eps_added", 1e-6, 1, "s")


def test_state_discretisation_and_pi05_prompt(tmp_path):
    np.testing.assert_array_equal(
        discretize_state(np.array([-1.5, -1.0, -0.999, 0.0, 0.999, 1.0, 2.0])), [-1, 0, 0, 128, 255, 255, 255]
    )
    ckpt = make_tiny_checkpoint(tmp_path / "t", JOINT_NAMES, variant="pi05")
    tok = PaligemmaTokenizer(ckpt / "tokenizer.model", 64, pi05=True)
    with pytest.raises(ValueError, match="pass `state`"):
        tok("reach the red cube")
    ids, valid = tok("reach_the red cube", np.array([0.0, -1.0, 0.5]))
    expected = [tok.processor.bos_id()] + tok.processor.encode("Task: reach the red cube, State: 128 0 192;\nAction: ")
    assert ids[valid].tolist() == expected


def test_openpi_pi05_folder_type_from_weight_names(tmp_path):
    """openpi's converter writes no model type: π₀.5 is recognised by `time_mlp_in`."""
    folder = make_tiny_checkpoint(tmp_path / "t", JOINT_NAMES, variant="pi05")
    raw = json.loads((folder / "config.json").read_text())
    del raw["type"]
    (folder / "config.json").write_text(json.dumps(raw))
    assert load_config(folder).pi05
    backend = load_backend("pi0", folder)
    assert (
        backend.cfg.pi05
        and backend.processor.profile.state_norm == "quantiles"
        and backend.processor.profile.origin == "openpi"
    )
    assert backend.processor.state_input(np.zeros(7)) is None  # no state token


def test_pi0_weights_in_a_pi05_folder_fail_naming_the_keys(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "t", JOINT_NAMES, variant="pi05")
    save_weights(
        folder / "model.safetensors",
        Pi0Model(tiny_config(8, vocab_size=Pi0Model(load_config(folder)).cfg.vocab_size, max_token_len=64)),
    )
    with pytest.raises(BackendError, match=r"missing keys \[.*time_mlp_in.*unexpected keys \[.*state_proj"):
        load_backend("pi0", folder)


def test_lerobot_origin_needs_its_quantiles(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(make_tiny_checkpoint(tmp_path / "t", JOINT_NAMES, variant="pi05"), folder)
    raw = json.loads((folder / "norm_stats.json").read_text())
    for feature in raw["norm_stats"].values():
        del feature["q01"]
    (folder / "norm_stats.json").write_text(json.dumps(raw))
    with pytest.raises(
        BackendError, match=r"state statistics: quantiles normalisation needs \['q01', 'q99'\], missing \['q01'\]"
    ):
        load_backend("pi0", folder)
