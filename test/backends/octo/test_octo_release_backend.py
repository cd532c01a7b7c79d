"""The backend for converted released Octo models: tasks, history window, statistics, the action-space step,
and bad input (each a precise BackendError)."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from vla_ros.backends.action_output import robot_body
from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.octo.convert import ConversionError, load_reference_json, net_config
from vla_ros.backends.octo.processing import select_dataset, unnormalize_actions
from vla_ros.config import load_robot_config

ROBOT = robot_body(load_robot_config("sim"))


def load(folder, settings, **extra):
    return load_backend("octo", folder, {**settings, **extra}, robot=ROBOT)


def test_language_task_gives_a_bridge_ee_chunk_through_the_action_space_step(converted, settings, make_observation):
    backend = load(converted, settings)
    assert backend.output.space.name == "bridge_ee_delta" and backend.horizon == 4
    obs = make_observation()
    noise = np.random.default_rng(1).normal(size=(21, 28)).astype(np.float32)
    actions = backend.predict_actions(obs, noise)
    backend.reset()
    chunk = backend.predict(obs, noise)
    expected = backend.output.to_chunk(actions, obs.joint_positions, obs.stamp_s, backend.dt_s)
    np.testing.assert_allclose(chunk.positions, expected.positions)
    assert len(chunk.positions) >= 1 and np.isfinite(chunk.positions).all()  # IK may stop early on a random model
    assert actions.shape == (4, 7) and np.abs(actions[:, :6]).max() < 1.0  # EE deltas in metres / radians


def test_instruction_is_encoded_once_per_change(converted, settings, make_observation):
    backend = load(converted, settings)
    for seed in range(3):
        backend.predict(make_observation(seed))
    assert backend.text_encoder.encodings == 1
    backend.predict(make_observation(3, instruction="put the blue cube on the plate"))
    assert backend.text_encoder.encodings == 2


def test_long_instruction_is_truncated_to_16_tokens_with_one_warning(converted, settings, make_observation, caplog):
    backend = load(converted, settings)
    long = " ".join(["pick up the red cube"] * 5)  # 25 words + </s>
    with caplog.at_level(logging.WARNING):
        states = backend.text_encoder(long)
        backend.text_encoder(long + " then")
    assert states.shape == (16, 24)
    assert len([r for r in caplog.records if "truncated" in r.getMessage()]) == 1
    tok = backend.text_encoder.tokenizer
    ids = tok([long], max_length=16, padding="max_length", truncation=True, return_tensors="pt")
    with torch.inference_mode():
        expected = backend.text_encoder.encoder(**ids).last_hidden_state[0].numpy()
    np.testing.assert_allclose(states, expected)


def test_history_window_pads_the_episode_start_and_masks_a_missing_camera(converted, settings, make_observation):
    backend = load(converted, settings)
    first = backend.inputs(make_observation(0, cameras=("front",)))
    assert first["timestep_valid"].tolist() == [[False, True]]
    assert first["image_valid"]["wrist"].tolist() == [[False, False]]
    assert (first["images"]["wrist"] == -1).all()  # the scaled zero image
    second = backend.inputs(make_observation(1))
    assert second["timestep_valid"].tolist() == [[True, True]]
    assert second["image_valid"]["wrist"].tolist() == [[False, True]]
    backend.reset()
    assert backend.inputs(make_observation(2))["timestep_valid"].tolist() == [[False, True]]


def test_goal_image_task_without_language_needs_no_t5(converted, settings, make_observation, tmp_path):
    goal = tmp_path / "goal.png"
    cv2.imwrite(str(goal), np.full((32, 32, 3), 200, np.uint8))
    goal_settings = {**settings, "t5_folder": None, "goal_image": str(goal)}
    backend = load(converted, goal_settings)
    assert backend.text_encoder is None
    inputs = backend.inputs(make_observation(instruction=""))
    assert inputs["language_valid"].tolist() == [False]
    np.testing.assert_allclose(inputs["goals"]["primary"].numpy(), 200 / 127.5 - 1, atol=1e-6)
    assert np.isfinite(backend.predict(make_observation(instruction="")).positions).all()


def test_goal_camera_replaces_the_goal_file_when_present(converted, settings, make_observation):
    backend = load(converted, settings, goal_camera="goal")
    obs = make_observation()
    obs.images["goal"] = np.zeros((32, 32, 3), np.uint8)
    obs.images["goal"][:, :16] = 255
    goals = backend.inputs(obs)["goals"]["primary"][0].numpy()
    assert goals[:, :, :16].min() == 1.0 and goals[:, :, 16:].max() == -1.0


def test_statistics_normal_and_bounds_leave_masked_dims_raw():
    stats = {"mean": np.array([1.0, 2.0]), "std": np.array([0.5, 2.0]), "p01": np.array([-1.0, 0.0]),
             "p99": np.array([3.0, 1.0]), "mask": np.array([True, False])}  # fmt: skip
    a = np.array([[0.5, 0.7, 9.0]])  # a model dim past the dataset's width is dropped
    np.testing.assert_allclose(unnormalize_actions(a, stats, "mean_std"), [[1.25, 0.7]])
    np.testing.assert_allclose(unnormalize_actions(a, stats, "quantiles"), [[2.0, 0.7]])


def test_dataset_key_errors_list_the_available_keys(converted, settings):
    stats = json.loads((converted / "dataset_statistics.json").read_text())
    with pytest.raises(BackendError, match=r"several datasets.*\['bridge_dataset', 'fractal20220817_data'\]"):
        select_dataset(stats, None, "here")
    with pytest.raises(BackendError, match=r"'nope' not found; available: \['bridge_dataset'"):
        load(converted, settings, dataset_key="nope")


def test_missing_t5_folder_names_the_folder_and_how_to_get_it(converted, settings, tmp_path):
    with pytest.raises(BackendError, match=rf"T5 folder {tmp_path / 'absent'} does not exist.*huggingface-cli"):
        load(converted, settings, t5_folder=str(tmp_path / "absent"))


def test_bad_images_name_the_camera(converted, settings, make_observation):
    backend = load(converted, settings)
    obs = make_observation()
    obs.images["front"] = obs.images["front"][..., 0]  # grayscale
    with pytest.raises(BackendError, match=r"camera 'front': expected an \(H, W, 3\) uint8"):
        backend.predict(obs)
    strict = load(converted, settings, resize_images=False)
    with pytest.raises(BackendError, match=r"camera 'front': image is 64x48, the model takes 32x32"):
        strict.predict(make_observation())


def test_a_folder_that_is_not_an_octo_checkpoint_is_refused(tmp_path, settings):
    with pytest.raises(ConversionError, match="not an Octo checkpoint folder: missing"):
        load_reference_json(tmp_path)
    with pytest.raises(ConversionError, match="no 'model' section"):
        net_config({"window_size": 2}, {})
    (tmp_path / "config.json").write_text(json.dumps({"model": {}}))
    (tmp_path / "dataset_statistics.json").write_text("{}")
    with pytest.raises(BackendError, match="JAX Octo checkpoint.*vla-ros convert octo"):
        load(tmp_path, settings)


def test_convert_cli_reports_a_folder_that_is_not_an_octo_checkpoint(tmp_path, capsys):
    from vla_ros.cli import main

    assert main(["convert", "octo", str(tmp_path), str(tmp_path / "out")]) == 1
    assert (
        "not an Octo checkpoint folder: missing ['config.json', 'dataset_statistics.json']" in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_converter_names_a_missing_param_and_unused_ones(reference):
    from pathlib import Path

    from vla_ros.backends.octo.convert import convert_params

    raw = json.loads((Path(__file__).parent / "fixtures" / "tiny" / "config.json").read_text())
    params = {k[len("params/") :]: v for k, v in reference.items() if k.startswith("params/")}
    extra = {**params, "octo_transformer/extra_thing/kernel": np.zeros(3, np.float32)}
    with pytest.raises(ConversionError, match=r"keys the architecture does not use: \['octo_transformer/extra_thing"):
        convert_params(raw, extra)
    missing = {k: v for k, v in params.items() if "encoder_norm" not in k}
    with pytest.raises(ConversionError, match="missing octo_transformer/BlockTransformer_0/Transformer_0/encoder_norm"):
        convert_params(raw, missing)


def test_weights_that_do_not_fit_the_config_are_one_error(converted, settings, tmp_path):
    import shutil

    folder = tmp_path / "bad"
    shutil.copytree(converted, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["head_hidden"] = 64
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BackendError, match=r"does not match the model: .*wrong shapes \['head.net.inp.weight"):
        load(folder, settings)


def test_guided_sampling_continues_the_running_plan_on_a_released_model(converted, settings, make_observation):
    """RTC through the same code as demo-style checkpoints: EE-delta targets of the plan, normalised with the
    dataset's statistics; the frozen points follow the plan, unguided they do not."""
    from vla_ros.backends.blocks.rtc import prefix_on_grid
    from vla_ros.core.types import PlanPrefix

    backend = load(converted, settings)
    assert backend.supports_prefix
    obs = make_observation()
    noise = np.random.default_rng(1).normal(size=(21, 28)).astype(np.float32)
    times = obs.stamp_s + np.linspace(0.0, backend.dt_s * backend.horizon, 9)
    plan = obs.joint_positions + 0.004 * np.sin(np.arange(9))[:, None] * (np.arange(7) < 6)  # mm-sized arm motion
    prefix = PlanPrefix(times, plan, obs.joint_names, committed_until_s=obs.stamp_s + 2.5 * backend.dt_s)
    free = backend.predict(obs, noise).positions
    backend.reset()
    guided = backend.predict(obs, noise, prefix).positions
    targets, weights = prefix_on_grid(prefix, obs.stamp_s + backend.dt_s * np.arange(1, backend.horizon + 1))
    assert weights[:2].tolist() == [1.0, 1.0] and weights[2] < 1.0  # the first two points are frozen
    assert len(free) >= 2 and len(guided) >= 2  # IK may stop a random model's chunk early
    free_error = np.abs(free[:2] - targets[:2]).max()
    guided_error = np.abs(guided[:2] - targets[:2]).max()
    print(f"frozen points: guided {guided_error:.2e} rad, free {free_error:.2e} rad")
    assert guided_error < 0.2 * free_error, (guided_error, free_error)


def test_batch_chunks_are_each_observations_first_step_chunk(converted, settings, make_observation):
    backend = load(converted, settings)
    observations = [make_observation(seed) for seed in range(3)]
    observations[1] = make_observation(1, cameras=("front",), instruction="put the blue cube on the plate")
    noises = [np.random.default_rng(seed).normal(size=(21, 28)).astype(np.float32) for seed in range(3)]
    batch = backend.predict_batch(observations, noises)
    for obs, noise, chunk in zip(observations, noises, batch):
        backend.reset()
        np.testing.assert_allclose(chunk.positions, backend.predict(obs, noise).positions, atol=1e-6)
    assert backend.diagnostics() == {
        "octo_checkpoint": "release",
        "octo_history": "1/2",
        "octo_dataset": "bridge_dataset",
    }
