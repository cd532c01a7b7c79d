"""The LeRobotDataset the recorder wrote, read by vla_ros's reader, equals what LeRobot 0.6.1 read from it.

fixtures/dataset/ and fixtures/lerobot_readout.{npz,json} come from
scripts/fixtures/make_lerobot_dataset_fixture.py (LeRobot's own `LeRobotDataset`, PyAV decoder).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vla_ros.recording.lerobot import read_dataset

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def ours():
    return read_dataset(FIXTURES / "dataset")


@pytest.fixture(scope="module")
def theirs():
    with np.load(FIXTURES / "lerobot_readout.npz") as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads((FIXTURES / "lerobot_readout.json").read_text())


def test_metadata_agrees_with_lerobot(ours, theirs):
    _, meta = theirs
    assert meta["lerobot_version"] == "0.6.1"
    assert ours.info["fps"] == meta["fps"] and ours.info["total_episodes"] == meta["total_episodes"]
    assert len(ours.columns["index"]) == meta["num_frames"] == meta["total_frames"]
    assert {k: {"dtype": f["dtype"], "shape": f["shape"]} for k, f in ours.info["features"].items()} == meta["features"]
    assert {t: i for i, t in enumerate(ours.tasks)} == meta["tasks"]
    for row, theirs_row in zip(ours.episodes, meta["episodes"]):
        assert {k: v for k, v in row.items() if not k.startswith("stats/")} == theirs_row
    assert [r["outcome"] for r in ours.episodes] == ["success", "success"]
    assert {k: {s: list(np.shape(v)) for s, v in d.items()} for k, d in ours.stats.items()} == meta["stats"]


def test_every_frame_agrees_with_lerobot(ours, theirs):
    arrays, _ = theirs
    for key, values in ours.columns.items():
        np.testing.assert_array_equal(values, arrays[key].reshape(values.shape), err_msg=key)
    assert [ours.tasks[i] for i in ours.columns["task_index"]] == arrays["task"].tolist()
    for cam in ours.cameras:
        frames = np.concatenate([ours.frames(cam, e) for e in range(len(ours.episodes))])
        np.testing.assert_array_equal(frames, arrays[f"observation.images.{cam}"], err_msg=cam)


def test_lerobot_builds_action_chunks_from_the_recorded_actions(ours, theirs):
    """delta_timestamps over `action`: LeRobot's chunk for one frame, padded at the episode's end."""
    arrays, meta = theirs
    k, steps = meta["delta_frame"], meta["delta_steps"]
    episode = ours.episodes[int(ours.columns["episode_index"][k])]
    end = episode["dataset_to_index"]
    idx = np.minimum(np.arange(k, k + steps), end - 1)
    np.testing.assert_array_equal(arrays["delta_action"], ours.columns["action"][idx])
    np.testing.assert_array_equal(arrays["delta_action_is_pad"], np.arange(k, k + steps) >= end)
