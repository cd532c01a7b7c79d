"""Training the demo model from a recorded LeRobotDataset (the fixture the recorder wrote and LeRobot read)."""

from pathlib import Path

import numpy as np
import pytest

from vla_ros.recording.lerobot import read_dataset
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES
from vla_ros.training.lerobot_data import load_lerobot
from vla_ros.training.train import TrainSettings, make_config, train

FIXTURE = Path(__file__).resolve().parents[1] / "recording" / "fixtures" / "dataset"
TINY = dict(width=32, depth=1, num_heads=2, mlp_dim=64, stem_channels=(8, 16), head_hidden=32, head_blocks=1)


def test_a_lerobot_dataset_becomes_the_expert_recorders_arrays():
    data, dt_s, summary = load_lerobot(FIXTURE, image_size=32, horizon=4)
    raw = read_dataset(FIXTURE)
    n = len(raw.columns["index"])
    assert dt_s == pytest.approx(0.1) and summary["episodes"] == 2 and summary["samples"] == n
    assert data["image_front"].shape == (n, 32, 32, 3) and data["image_front"].dtype == np.uint8
    assert data["state"].shape == (n, len(JOINT_NAMES)) and data["actions"].shape == (n, 4, len(JOINT_NAMES))
    assert list(data["instructions"]) == raw.tasks and data["task"].tolist() == raw.columns["task_index"].tolist()
    # labels: the next 4 commands of the same episode, the last one held past its end
    first = raw.episodes[0]["length"]
    action = raw.columns["action"]
    np.testing.assert_array_equal(data["actions"][0], action[1:5])
    np.testing.assert_array_equal(data["actions"][first - 2], action[[first - 1] * 4])
    np.testing.assert_array_equal(data["actions"][first], action[first + 1 : first + 5])
    with pytest.raises(ValueError, match="no episode with outcome in \\['failure'\\]"):
        load_lerobot(FIXTURE, outcomes=("failure",))


def test_the_demo_model_trains_and_fine_tunes_on_recorded_data(tmp_path):
    from vla_ros.backends.octo.checkpoint import load_config, save_checkpoint

    data, dt_s, _ = load_lerobot(FIXTURE, image_size=32, horizon=4)
    cfg = make_config(data, dt_s, None, diffusion_steps=5, **TINY)
    assert cfg.camera_names == CAMERAS and cfg.vocab == ("blue", "cube", "reach", "red", "the")
    settings = TrainSettings(budget_s=60, max_steps=30, batch_size=8, warmup_steps=5, threads=1)
    model, stats, info = train(data, cfg, settings, log=lambda *_: None)
    assert info["steps"] == 30 and np.isfinite(info["final_loss"])
    save_checkpoint(tmp_path / "base", model, cfg, stats)
    _, base_stats = load_config(tmp_path / "base")
    tuned, tuned_stats, _ = train(
        data, cfg, TrainSettings(**{**settings.__dict__, "init_from": str(tmp_path / "base")}), log=lambda *_: None
    )
    np.testing.assert_array_equal(tuned_stats.action.mean, base_stats.action.mean)  # fine-tuning keeps them


def test_train_refuses_a_dataset_folder_that_is_not_there(tmp_path, capsys):
    from vla_ros.cli import main

    assert main(["train", "--dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert "no such LeRobotDataset folder" in capsys.readouterr().err and not (tmp_path / "m").exists()
