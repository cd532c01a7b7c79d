"""OpenVLA-OFT: a chunk per forward, bidirectional attention over empty action embeddings, safe extra files."""

import argparse
import dataclasses
import shutil

import numpy as np
import pytest
import torch

from vla_ros.backends.base import BackendError
from vla_ros.backends.openvla.backend import STOP_TOKEN_ID, load_openvla_backend


@pytest.fixture(scope="module")
def oft(oft_checkpoint):
    return load_openvla_backend(oft_checkpoint)


def test_a_chunk_of_chunk_size_points_from_two_images_and_the_joint_state(oft, make_observation):
    assert oft.horizon == 4 and oft.camera_names == ("front", "wrist")
    obs = make_observation()
    actions = oft.predict_actions(obs)
    assert actions.shape == (4, 7) and np.all(np.isfinite(actions))
    assert len(np.unique(actions[:, 0])) > 1, "every chunk point is the same action"
    chunk = oft.predict(obs)
    assert chunk.positions.shape == (4, 7) and chunk.dt_s == oft.dt_s
    moved = dataclasses.replace(obs, joint_positions=obs.joint_positions + 0.3)
    assert not np.allclose(oft.predict_actions(moved), actions), "the proprio input has no effect"
    other_wrist = dataclasses.replace(obs, images={**obs.images, "wrist": 255 - obs.images["wrist"]})
    assert not np.allclose(oft.predict_actions(other_wrist), actions), "the wrist image has no effect"


def test_attention_is_bidirectional_over_the_empty_action_embeddings(oft, make_observation):
    obs = make_observation()
    model = oft.model
    embeds = model.embed(
        torch.from_numpy(np.concatenate([oft.pixel_values(obs.images[c]) for c in oft.camera_names]))[None],
        torch.tensor([oft.input_ids(obs.instruction)]),
    )
    n = 4 * 7
    first = model.parallel_hidden(embeds, n, STOP_TOKEN_ID)
    other_stop = model.parallel_hidden(embeds, n, STOP_TOKEN_ID + 5)
    assert first.shape == (1, n, 8)
    assert not torch.allclose(first[:, 0], other_stop[:, 0]), "the first action position does not see the last token"


def test_extra_files_that_need_code_to_unpickle_are_refused(oft_checkpoint, tmp_path):
    folder = shutil.copytree(oft_checkpoint, tmp_path / "oft")
    torch.save({"model.fc1.weight": argparse.Namespace(x=1)}, folder / "action_head--1_checkpoint.pt")
    with pytest.raises(BackendError, match=r"action_head--1_checkpoint.pt: refused, not a plain tensor state dict"):
        load_openvla_backend(folder)


def test_a_misshaped_head_is_one_clear_error(oft_checkpoint, tmp_path):
    folder = shutil.copytree(oft_checkpoint, tmp_path / "oft")
    state = torch.load(folder / "action_head--1_checkpoint.pt", weights_only=True)
    state["module.model.fc2.weight"] = torch.zeros(6, 8)
    torch.save(state, folder / "action_head--1_checkpoint.pt")
    with pytest.raises(BackendError, match=r"wrong shapes \['model.fc2.weight: \(6, 8\) != \(7, 8\)'\]"):
        load_openvla_backend(folder)


def test_without_proprio_joints_the_proprio_input_is_the_action_spaces_state(
    oft, oft_checkpoint, tmp_path, make_observation
):
    """Here the state is the joint positions: the same input as naming every joint, so the same chunk."""
    folder = shutil.copytree(oft_checkpoint, tmp_path / "oft")
    settings = (folder / "openvla.yaml").read_text()
    head = settings.partition("proprio_joints:")[0]
    (folder / "openvla.yaml").write_text(head + "proprio_joints: []\n")
    from_state = load_openvla_backend(folder)
    obs = make_observation()
    np.testing.assert_allclose(from_state.predict(obs).positions, oft.predict(obs).positions, atol=1e-6)


def test_missing_action_head_is_named(oft_checkpoint, tmp_path):
    folder = shutil.copytree(oft_checkpoint, tmp_path / "oft")
    (folder / "action_head--1_checkpoint.pt").unlink()
    with pytest.raises(BackendError, match=r"no action_head--\*checkpoint.pt"):
        load_openvla_backend(folder)


@pytest.mark.parametrize("fixture", ["openvla_checkpoint", "oft_checkpoint"])
def test_bfloat16_runs_both_paths_close_to_float32(request, fixture, make_observation):
    folder = request.getfixturevalue(fixture)
    obs = make_observation()
    full = load_openvla_backend(folder).predict_actions(obs)
    half = load_openvla_backend(folder, {"dtype": "bfloat16"})
    assert next(half.model.parameters()).dtype == torch.bfloat16
    np.testing.assert_allclose(half.predict_actions(obs), full, atol=0.1)
