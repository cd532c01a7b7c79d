"""Loading LeRobot SmolVLA folders: where the VLM config and tokenizer come from, what is refused (with a
message naming the file, key and value), the robot mapping, relative actions, guidance and dtype."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, reference
from safetensors.torch import load_file, save_file

from vla_ros.backends.action_output import RobotBody
from vla_ros.backends.base import BackendError, load_backend
from vla_ros.core.types import Observation, PlanPrefix

TINY = FIXTURES / "lerobot_smolvla_tiny"
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A writable copy of the tiny LeRobot folder."""
    return Path(shutil.copytree(TINY, tmp_path / "ckpt"))


def edit_json(path: Path, change) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def observation(ref, joints=JOINTS, stamp_s: float = 0.0) -> Observation:
    images = {str(c): ref[f"image_{c}"] for c in ref["cameras"]}
    return Observation(stamp_s, images, joints, ref["state"], str(ref["task"]))


def load(folder: Path, **overrides):
    return load_backend("smolvla", folder, overrides, num_threads=2)


# --- the VLM backbone's config and tokenizer --------------------------------------------------------


def test_without_the_vlm_config_the_load_is_refused_naming_what_to_put_where(tiny):
    (tiny / "vlm_config.json").unlink()
    with pytest.raises(BackendError) as err:
        load(tiny)
    message = str(err.value)
    assert "vlm_config.json" in message and "HuggingFaceTB/SmolVLM2-500M-Video-Instruct" in message
    assert "vlm:" in message and "hub" in message


def test_the_vlm_setting_reads_a_local_smolvlm2_folder(tiny, tmp_path):
    """config.json + tokenizer of a local SmolVLM2 download, relative to the checkpoint or absolute: same chunk."""
    vlm = tmp_path / "SmolVLM2"
    vlm.mkdir()
    (tiny / "vlm_config.json").rename(vlm / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tiny / name).rename(vlm / name)
    ref = reference(tiny)
    for where in ("../SmolVLM2", str(vlm), str(vlm / "config.json")):
        backend = load(tiny, vlm=where)
        assert str(vlm) in backend.provenance["vlm_config"] and backend.provenance["tokenizer"] == str(vlm)
        chunk = backend.predict(observation(ref), noise=ref["noise"])
        assert np.abs(chunk.positions - ref["actions"]).max() <= 1e-4


def test_a_vlm_setting_without_a_config_is_refused(tiny, tmp_path):
    with pytest.raises(BackendError, match=r"vlm: .*nowhere holds no SmolVLM2 config.json"):
        load(tiny, vlm=str(tmp_path / "nowhere"))


def test_a_missing_tokenizer_is_refused(tiny):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tiny / name).unlink()
    with pytest.raises(BackendError, match=r"no tokenizer in .*tokenizer.json"):
        load(tiny)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda raw: raw.update(model_type="idefics3"), r"model_type 'idefics3'.*SmolVLM2"),
        (lambda raw: raw["text_config"].update(model_type="mistral"), r"text_config.model_type 'mistral'"),
    ],
)
def test_a_vlm_config_of_another_model_is_refused(tiny, change, match):
    edit_json(tiny / "vlm_config.json", change)
    with pytest.raises(BackendError, match=match):
        load(tiny)


# --- config.json ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("type", "pi05", r"type is 'pi05'.*backend:=pi0"),
        ("adapt_to_pi_aloha", True, r"adapt_to_pi_aloha is True: not supported"),
        ("use_delta_joint_actions_aloha", True, r"use_delta_joint_actions_aloha"),
        ("add_image_special_tokens", True, r"add_image_special_tokens is True: not supported"),
        ("n_obs_steps", 2, r"n_obs_steps is 2: not supported"),
        ("use_cache", False, r"use_cache is False: not supported"),
        ("attention_mode", "cross_attn_v2", r"attention_mode 'cross_attn_v2' is not supported"),
        ("pad_language_to", "do_not_pad", r"pad_language_to 'do_not_pad'"),
        ("num_expert_layers", 1, r"num_expert_layers 1 differs from the 3 VLM layers"),
        ("resize_imgs_with_padding", None, r"resize_imgs_with_padding must be \[width, height\]"),
        ("max_state_dim", 4, r"state_dim 6 exceeds max_state_dim 4"),
    ],
)
def test_config_values_that_are_not_reproduced_are_refused(tiny, key, value, match):
    edit_json(tiny / "config.json", lambda raw: raw.update({key: value}))
    with pytest.raises(BackendError, match=match) as err:
        load(tiny)
    assert "config.json" in str(err.value)


def test_a_folder_that_is_not_a_checkpoint_is_refused(tiny, tmp_path):
    with pytest.raises(BackendError, match="folder not found"):
        load(tmp_path / "absent")
    (tiny / "model.safetensors").unlink()
    with pytest.raises(BackendError, match=r"missing \['model.safetensors'\]"):
        load(tiny)


# --- processor pipelines and statistics -----------------------------------------------------------


def test_a_processor_step_that_is_not_reproduced_is_refused(tiny):
    edit_json(
        tiny / "policy_preprocessor.json",
        lambda raw: raw["steps"].insert(2, {"registry_name": "image_crop_resize_processor", "config": {}}),
    )
    with pytest.raises(BackendError, match=r"policy_preprocessor.json:steps\[2\].image_crop_resize_processor"):
        load(tiny)


def test_normalised_images_are_refused(tiny):
    edit_json(
        tiny / "policy_preprocessor.json", lambda raw: raw["steps"][5]["config"]["norm_map"].update(VISUAL="MEAN_STD")
    )
    with pytest.raises(BackendError, match=r"norm_map.VISUAL: images normalised with MEAN_STD: not supported"):
        load(tiny)


def test_the_normalization_setting_must_agree_with_the_folder(tiny):
    with pytest.raises(BackendError, match=r"normalization 'mean_std' contradicts .* state with 'quantiles'"):
        load(tiny, normalization="mean_std")


def test_the_normalization_setting_decides_for_a_folder_that_does_not_say(tiny):
    edit_json(tiny / "config.json", lambda raw: raw.pop("normalization_mapping"))
    for name, index in (("policy_preprocessor.json", 5), ("policy_postprocessor.json", 0)):
        edit_json(tiny / name, lambda raw: raw["steps"][index]["config"].pop("norm_map"))
    backend = load(tiny, normalization="min_max")
    assert backend.processor.modes == {"state": "min_max", "action": "min_max"}
    assert backend.settings_sources["normalization"] == "node parameters"
    assert load(tiny).processor.modes["state"] == "mean_std"  # LeRobot SmolVLA's default


def test_missing_statistics_are_refused(tiny):
    (tiny / "policy_postprocessor_step_0_unnormalizer_processor.safetensors").unlink()
    with pytest.raises(BackendError, match=r"action normalisation statistics not found"):
        load(tiny)


# --- weights --------------------------------------------------------------------------------------


def test_weights_that_do_not_match_are_refused_naming_every_key(tiny):
    weights = load_file(str(tiny / "model.safetensors"))
    weights.pop("model.state_proj.bias")
    weights["model.action_out_proj.weight"] = torch.zeros(3, 3)
    weights["model.extra.weight"] = torch.zeros(1)
    save_file(weights, str(tiny / "model.safetensors"))
    with pytest.raises(BackendError) as err:
        load(tiny)
    message = str(err.value)
    assert "state_proj.bias" in message and "model.extra.weight" in message and "action_out_proj.weight" in message


def test_weights_with_statistics_inside_are_refused_with_the_way_out(tiny):
    weights = load_file(str(tiny / "model.safetensors"))
    weights["normalize_inputs.buffer_observation_state.mean"] = torch.zeros(6)
    save_file(weights, str(tiny / "model.safetensors"))
    with pytest.raises(BackendError, match=r"LeRobot < 0.4.*migrate_policy_normalization"):
        load(tiny)


def test_the_unused_lm_head_may_be_absent(tiny):
    weights = load_file(str(tiny / "model.safetensors"))
    weights.pop("model.vlm_with_expert.vlm.lm_head.weight")
    save_file(weights, str(tiny / "model.safetensors"))
    ref = reference(tiny)
    assert np.abs(load(tiny).predict(observation(ref), noise=ref["noise"]).positions - ref["actions"]).max() <= 1e-4


# --- the robot mapping ----------------------------------------------------------------------------


def test_joints_must_give_the_checkpoints_state_and_action_widths(tiny):
    with pytest.raises(BackendError, match=r"give 5 action / 5 state values; the checkpoint was trained on 6 / 6"):
        load(tiny, joints=list(JOINTS[:5]))


def test_cameras_must_be_the_checkpoints(tiny):
    with pytest.raises(BackendError, match=r"cameras: \['side'\] are not cameras of the checkpoint"):
        load(tiny, cameras={"side": "front"})
    edit_json(tiny / "config.json", lambda raw: raw.update(empty_cameras=1))
    with pytest.raises(BackendError, match=r"empty cameras were always black"):
        load(tiny, cameras={"top": "front", "empty_camera_0": "wrist"})


def test_unmapped_model_cameras_are_left_out_as_lerobot_leaves_out_missing_ones(tiny):
    ref = reference(tiny)
    backend = load(tiny, cameras={"wrist": "wrist"})
    assert backend.camera_names == ("wrist",)
    chunk = backend.predict(observation(ref), noise=ref["noise"])
    assert np.isfinite(chunk.positions).all() and np.abs(chunk.positions - ref["actions"]).max() > 1e-3


def test_joints_and_cameras_default_to_the_robot_configs(tiny):
    (tiny / "smolvla.yaml").unlink()
    robot = RobotBody(joint_names=JOINTS, camera_names=("wrist", "top", "extra"), source="robot.yaml")
    backend = load_backend("smolvla", tiny, {}, robot=robot)
    assert backend.joint_names == JOINTS and backend.settings.cameras == {"top": "top", "wrist": "wrist"}
    assert backend.settings_sources["joints"] == "robot.yaml: joints"
    assert backend.settings_sources["cameras"].startswith("default")


def test_lerobot_relative_actions_add_the_state_back(tiny):
    """The relative/absolute action steps of LeRobot's pipelines (π₀'s reader): all dims but the gripper."""
    ref = reference(tiny)
    absolute = load(tiny).predict(observation(ref), noise=ref["noise"]).positions
    names = [f"{j}.pos" for j in JOINTS]
    relative_step = {"enabled": True, "exclude_joints": ["gripper"], "action_names": names}
    edit_json(
        tiny / "policy_preprocessor.json",
        lambda raw: raw["steps"].insert(5, {"registry_name": "relative_actions_processor", "config": relative_step}),
    )
    edit_json(
        tiny / "policy_postprocessor.json",
        lambda raw: raw["steps"].insert(
            1, {"registry_name": "absolute_actions_processor", "config": {"enabled": True}}
        ),
    )
    (tiny / "smolvla.yaml").write_text(f"joints: {list(JOINTS)}\ncameras: {{top: top, wrist: wrist}}\n")
    backend = load(tiny)
    assert (
        backend.relative_joints == JOINTS[:5]
        and "absolute_actions_processor" in backend.settings_sources["relative_joints"]
    )
    relative = backend.predict(observation(ref), noise=ref["noise"]).positions
    np.testing.assert_allclose(relative[:, :5], absolute[:, :5] + ref["state"][:5], atol=1e-9)
    np.testing.assert_allclose(relative[:, 5], absolute[:, 5], atol=1e-9)


# --- sampling ---------------------------------------------------------------------------------------


def test_rtc_guidance_pulls_the_frozen_part_to_the_plan(tiny):
    ref = reference(tiny)
    backend = load(tiny)
    obs = observation(ref, stamp_s=2.0)
    plan = ref["actions"][:4] + 0.3
    prefix = PlanPrefix(
        obs.stamp_s + backend.dt_s * np.arange(1, 5), plan, JOINTS, committed_until_s=obs.stamp_s + 0.07
    )
    free = backend.predict(obs, noise=ref["noise"])
    guided = backend.predict(obs, noise=ref["noise"], prefix=prefix)
    before, after = (np.abs(c.positions[:2] - plan[:2]).max() for c in (free, guided))
    assert after < 0.25 * before, (before, after)


def test_bfloat16_stays_close_to_float32(tiny):
    ref = reference(tiny)
    bf16 = load(tiny, dtype="bfloat16")
    assert bf16.model.dtype == torch.bfloat16 and bf16.model.state_proj.weight.dtype == torch.float32
    diff = np.abs(bf16.predict(observation(ref), noise=ref["noise"]).positions - ref["actions"]).max()
    assert np.isfinite(diff) and diff < 0.1


def test_noise_of_the_wrong_shape_is_refused(tiny):
    ref = reference(tiny)
    with pytest.raises(BackendError, match=r"noise must have shape \(8, 32\)"):
        load(tiny).predict(observation(ref), noise=np.zeros((8, 6)))


def test_the_published_size_builds_with_smolvla_bases_shapes():
    """SmolVLM2-500M's config with smolvla_base's policy fields, on the meta device: 450.0M parameters with the
    VLM's (unused, not built) lm_head, as published; the expert 720 wide with 2048-wide MLPs."""
    from vla_ros.backends.smolvla.configuration import SmolVLAConfig, vlm_config_from_json
    from vla_ros.backends.smolvla.latency import SMOLVLM2_500M, policy_config
    from vla_ros.backends.smolvla.modeling import SmolVLAModel

    cfg = SmolVLAConfig.from_json(policy_config("full", 2)).with_vlm(vlm_config_from_json(SMOLVLM2_500M, "x"), "x")
    with torch.device("meta"):
        model = SmolVLAModel(cfg)
    count = sum(p.numel() for p in model.parameters())
    assert count == 402_737_376 and count + 49280 * 960 == 450_046_176
    expert = model.vlm_with_expert.lm_expert
    assert len(expert.layers) == 16 and expert.layers[0].mlp.gate_proj.weight.shape == (2048, 720)
    assert expert.layers[1].self_attn.k_proj.weight.shape == (320, 320)  # cross-attention: from the VLM's keys
    assert expert.layers[0].self_attn.k_proj.weight.shape == (320, 720)
