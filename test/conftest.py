"""Shared fixtures: a tiny random-weight checkpoint and per-test ROS isolation."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

_domain_ids = itertools.count(100 + (os.getpid() % 50) * 2)


@pytest.fixture
def ros_env(tmp_path, monkeypatch):
    """Own ROS_DOMAIN_ID, DDS on localhost only, logs in a temp dir; applied to this process too."""
    env = {
        "ROS_DOMAIN_ID": str(next(_domain_ids) % 230),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(tmp_path / "ros_logs"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A demo-style Octo checkpoint with random weights for the sim arm, saved like a real one."""
    import numpy as np
    import torch

    from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
    from vla_ros.backends.octo.checkpoint import save_checkpoint
    from vla_ros.backends.octo.configuration import OctoConfig
    from vla_ros.backends.octo.modeling import OctoNet
    from vla_ros.sim.tabletop import JOINT_NAMES

    torch.manual_seed(0)
    cfg = OctoConfig(
        camera_names=("front", "wrist"),
        image_size=32,
        joint_names=JOINT_NAMES,
        horizon=4,
        dt_s=0.1,
        delta_mask=(True,) * 6 + (False,),
        vocab=("reach", "the", "red", "blue", "cube"),
        max_tokens=8,
        width=32,
        depth=2,
        num_heads=2,
        mlp_dim=64,
        stem_channels=(8, 16),
        head_hidden=32,
        head_blocks=1,
        diffusion_steps=5,
    )
    d = len(JOINT_NAMES)
    stats = DatasetStatistics(
        FeatureStats(np.zeros(d), np.ones(d), np.ones(d, bool)),
        FeatureStats(np.zeros(d), np.full(d, 0.01), np.array([True] * 6 + [False])),
    )
    folder = tmp_path_factory.mktemp("tiny_octo")
    save_checkpoint(folder, OctoNet(cfg.net_config()), cfg, stats)
    return folder


def make_tiny_ee_checkpoint(folder: Path, action_mean: float = 0.0) -> Path:
    """A demo-style Octo checkpoint (random weights) in the demo's end-effector delta space for the sim arm.

    action_mean: the actions' statistics mean (NaN: every model output becomes NaN).
    """
    import numpy as np
    import torch

    from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
    from vla_ros.backends.octo.checkpoint import save_checkpoint
    from vla_ros.backends.octo.configuration import OctoConfig
    from vla_ros.backends.octo.modeling import OctoNet
    from vla_ros.sim.tabletop import JOINT_NAMES
    from vla_ros.training.train import EE_DELTA_SPACE

    torch.manual_seed(0)
    cfg = OctoConfig(
        camera_names=("front", "wrist"),
        image_size=32,
        joint_names=JOINT_NAMES,
        horizon=4,
        dt_s=0.1,
        action_space=EE_DELTA_SPACE,
        action_dim=7,
        state_dim=10,
        vocab=("reach", "the", "red", "blue", "cube"),
        max_tokens=8,
        width=32,
        depth=2,
        num_heads=2,
        mlp_dim=64,
        stem_channels=(8, 16),
        head_hidden=32,
        head_blocks=1,
        diffusion_steps=5,
    )
    stats = DatasetStatistics(  # 1 mm / 1 mrad steps: every point reachable; the gripper at 0.03 m
        FeatureStats(np.zeros(10), np.ones(10), np.ones(10, bool)),
        FeatureStats(np.array([action_mean] * 6 + [0.03]), np.array([1e-3] * 6 + [1e-4]), np.ones(7, bool)),
    )
    save_checkpoint(folder, OctoNet(cfg.net_config()), cfg, stats)
    return folder


@pytest.fixture(scope="session")
def tiny_ee_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_ee_checkpoint(tmp_path_factory.mktemp("tiny_octo_ee"))


@pytest.fixture(scope="session")
def tiny_nan_ee_checkpoint(tmp_path_factory) -> Path:
    """The same with NaN action statistics: every action the model outputs is NaN."""
    return make_tiny_ee_checkpoint(tmp_path_factory.mktemp("tiny_octo_ee_nan"), action_mean=float("nan"))


@pytest.fixture(scope="session")
def tiny_ee_pi0_franka(tmp_path_factory) -> Path:
    """A tiny random π₀ for the franka_ik robot whose settings say it predicts LIBERO end-effector deltas."""
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
    from vla_ros.config import load_robot_config

    joints = load_robot_config("franka_ik").joint_names
    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_pi0_franka"), joints, ("front", "wrist"), horizon=4)
    with open(folder / "pi0.yaml", "a") as f:
        f.write("action_space: {preset: libero_ee_delta}\n")
    return folder


@pytest.fixture(scope="session")
def tiny_pi0_checkpoint(tmp_path_factory) -> Path:
    """A π₀ checkpoint folder in the real layout (random weights, toy sizes) for the sim arm."""
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
    from vla_ros.sim.tabletop import JOINT_NAMES

    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny_pi0"), JOINT_NAMES, ("front", "wrist"), horizon=8, dt_s=0.1
    )
