"""OpenVLA checkpoint folder: sharded weights, one clear error before any copy, unnorm_key, full-size build."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.openvla.backend import load_openvla_backend
from vla_ros.backends.openvla.checkpoint import INDEX, build_model, load_config, load_weights
from vla_ros.backends.openvla.configuration import OPENVLA_7B, OpenVLAConfig

SHARD_1 = "model-00001-of-00002.safetensors"


@pytest.fixture
def folder(tmp_path, reference_checkpoint):
    return shutil.copytree(reference_checkpoint, tmp_path / "ckpt")


def shard_holding(folder, key):
    return folder / json.loads((folder / INDEX).read_text())["weight_map"][key]


def rewrite(path, edit):
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def test_sharded_checkpoint_loads_into_a_bfloat16_model(folder):
    model = build_model(load_config(folder), dtype=torch.bfloat16)
    load_weights(folder, model)
    key = "projector.fc1.weight"
    assert model.state_dict()[key].dtype == torch.bfloat16
    assert torch.equal(model.state_dict()[key], load_file(str(shard_holding(folder, key)))[key])


def test_a_missing_shard_is_named(folder):
    (folder / SHARD_1).unlink()
    with pytest.raises(BackendError, match=rf"shards listed in {INDEX} are missing: \['{SHARD_1}'\]"):
        load_openvla_backend(
            folder,
            {"unnorm_key": "sim_tabletop", "joints": [f"a{i}" for i in range(7)], "cameras": {"primary": "front"}},
        )


def test_missing_unexpected_and_misshaped_keys_in_one_error_and_nothing_copied(folder):
    key_missing = "language_model.model.layers.1.mlp.up_proj.weight"
    key_shape = "projector.fc3.weight"
    rewrite(shard_holding(folder, key_missing), lambda t: t.pop(key_missing))
    rewrite(shard_holding(folder, key_shape), lambda t: t.__setitem__(key_shape, torch.zeros(8, 9)))
    rewrite(folder / SHARD_1, lambda t: t.__setitem__("projector.fc4.weight", torch.zeros(2)))
    index = json.loads((folder / INDEX).read_text())
    index["weight_map"]["projector.fc4.weight"] = SHARD_1
    (folder / INDEX).write_text(json.dumps(index))

    model = build_model(load_config(folder))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BackendError) as err:
        load_weights(folder, model)
    message = str(err.value)
    assert f"missing keys ['{key_missing}']" in message
    assert "unexpected keys ['projector.fc4.weight']" in message
    assert f"wrong shapes ['{key_shape}: (8, 9) != (8, 8)']" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "weights were copied before the error"


def test_unnorm_key_is_required_with_several_datasets_and_must_exist(folder, reference_settings):
    with pytest.raises(
        BackendError, match=r"several datasets; set unnorm_key to one of \['other_robot', 'sim_tabletop'\]"
    ):
        _load_without_key(folder, reference_settings)
    with pytest.raises(
        BackendError,
        match=r"norm_stats: unnorm_key 'bridge_orig' not found; available: \['other_robot', 'sim_tabletop'\]",
    ):
        load_openvla_backend(folder, {"unnorm_key": "bridge_orig"}, config=reference_settings)


def _load_without_key(folder, settings_path):
    text = settings_path.read_text().replace("unnorm_key: sim_tabletop", "unnorm_key: null")
    path = folder / "openvla.yaml"
    path.write_text(text)
    return load_openvla_backend(folder)


def test_joints_must_match_the_action_dims(folder, tmp_path, reference_settings):
    path = tmp_path / "six.yaml"
    path.write_text(reference_settings.read_text().replace("- a6\n", ""))
    with pytest.raises(BackendError, match=r"must name the 7 action dims"):
        load_openvla_backend(folder, config=path)


def test_missing_files_are_listed(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(
        BackendError,
        match=r"missing \['preprocessor_config.json', 'model.safetensors.index.json or model.safetensors', "
        r"'tokenizer.json or tokenizer.model'\]",
    ):
        load_openvla_backend(tmp_path)


def test_unknown_towers_are_an_error_naming_the_ids(folder):
    raw = json.loads((folder / "config.json").read_text())
    raw.pop("vision_towers")
    with pytest.raises(
        ValueError,
        match=r"timm_model_ids \['vit_tiny_patch14_reg4_dinov2_test', 'vit_tiny_patch14_siglip_test'\] are not known",
    ):
        OpenVLAConfig.from_json(raw)


def test_registered_by_name_with_node_settings_over_the_package_file(folder, reference_settings):
    mapping = yaml.safe_load(reference_settings.read_text())
    node = {k: mapping[k] for k in ("joints", "cameras", "unnorm_key", "relative_joints")}
    backend = load_backend("openvla", folder, {**node, "device": "cpu"}, seed=3, num_threads=0)
    assert backend.horizon == 1 and backend.camera_names == ("front",)
    assert backend.settings_sources["unnorm_key"] == "node parameters"
    assert backend.settings_sources["dtype"].endswith("config/backends/openvla.yaml")


def test_full_size_openvla_7b_builds_on_the_meta_device_with_7_54b_parameters():
    model = build_model(OpenVLAConfig.from_json(OPENVLA_7B), device="meta", dtype=torch.bfloat16)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 7_541_237_184  # the reference model's count
    assert model.language_model.config.rms_norm_eps == 1e-6  # transformers' default, as openvla-7b leaves it


def test_end_effector_actions_go_through_the_shared_action_space_layer(openvla_checkpoint, make_observation):
    """An OpenVLA checkpoint in Bridge's convention on the sim arm: its 7 values per step are EE
    deltas + gripper, turned into joint targets by the same step as every backend (IK)."""
    from vla_ros.backends.action_output import robot_body
    from vla_ros.config import load_robot_config

    robot = robot_body(load_robot_config("sim"))
    ee = load_backend("openvla", openvla_checkpoint, {"action_space": {"preset": "bridge_ee_delta"}}, robot=robot)
    assert ee.output.space.name == "bridge_ee_delta"
    obs = make_observation()
    chunk = ee.predict(obs)
    actions = ee.predict_actions(obs)
    expected = ee.output.to_chunk(actions, obs.joint_positions, obs.stamp_s, ee.dt_s)
    np.testing.assert_allclose(chunk.positions, expected.positions)
    assert chunk.joint_names == ee.joint_names and np.all(np.isfinite(chunk.positions))
    joint = load_backend("openvla", openvla_checkpoint, robot=robot)  # the same numbers read as joint targets
    assert joint.output.space.name != "bridge_ee_delta"
    assert not np.allclose(joint.predict(obs).positions, chunk.positions)
