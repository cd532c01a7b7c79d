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
    """An Octo-design checkpoint with random weights for the sim arm, saved like a real one."""
    import numpy as np
    import torch

    from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
    from vla_ros.backends.octo.checkpoint import save_checkpoint
    from vla_ros.backends.octo.configuration import OctoConfig
    from vla_ros.backends.octo.modeling import OctoModel
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
    save_checkpoint(folder, OctoModel(cfg), stats)
    return folder


@pytest.fixture(scope="session")
def tiny_pi0_checkpoint(tmp_path_factory) -> Path:
    """A π₀ checkpoint folder in the real layout (random weights, toy sizes) for the sim arm."""
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
    from vla_ros.sim.tabletop import JOINT_NAMES

    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny_pi0"), JOINT_NAMES, ("front", "wrist"), horizon=8, dt_s=0.1
    )
