"""Shared fixtures: tiny random-weight checkpoints, per-test ROS isolation and a bare ROS node of the test."""

from __future__ import annotations

import itertools
import os
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "test"))  # test/harness.py, importable from every test folder
os.environ.setdefault("MUJOCO_GL", "egl")
# the backends only the tests register (fault_injection, noop), for this process and the nodes it starts
TEST_BACKENDS = ROOT / "test" / "plugins" / "diagnostic"
sys.path.insert(2, str(TEST_BACKENDS))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(TEST_BACKENDS), os.environ.get("PYTHONPATH"))))

# The tests' ROS domains: 100-229, never below, where `vla-ros demo` and `soak` pick theirs (40-89): a test run beside
# a demo on one machine must not join its graph (same node names, two sims' joint states in one executor).
TEST_DOMAINS = range(100, 230)
_domain_ids = itertools.count((os.getpid() % 50) * 2)


@pytest.fixture
def ros_env(tmp_path, monkeypatch):
    """Own ROS_DOMAIN_ID, DDS on localhost only, logs in a temp dir; applied to this process too."""
    env = {
        "ROS_DOMAIN_ID": str(TEST_DOMAINS[next(_domain_ids) % len(TEST_DOMAINS)]),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(tmp_path / "ros_logs"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def ros_node(ros_env):
    """A bare rclpy node of the test (in `ros_env`), spun on its own thread; rclpy is shut down after the test."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init(args=[])
    node = rclpy.create_node("test_peer")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


# toy network sizes of the tiny Octo checkpoints
TINY_OCTO_SIZES = dict(width=32, depth=2, num_heads=2, mlp_dim=64, stem_channels=(8, 16), head_hidden=32, head_blocks=1)


def save_tiny_octo(folder: Path, stats, **config) -> Path:
    """A demo-style Octo checkpoint for the sim arm (two cameras, 32 px, horizon 4 at 0.1 s, toy sizes, random
    weights from seed 0) with the dataset statistics `stats`, saved like a real one; `config`: more OctoConfig
    fields."""
    import torch

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
        vocab=("reach", "the", "red", "blue", "cube"),
        max_tokens=8,
        diffusion_steps=5,
        **TINY_OCTO_SIZES,
        **config,
    )
    save_checkpoint(folder, OctoNet(cfg.net_config()), cfg, stats)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A demo-style Octo checkpoint with random weights for the sim arm, saved like a real one."""
    import numpy as np

    from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
    from vla_ros.sim.tabletop import JOINT_NAMES

    d = len(JOINT_NAMES)
    stats = DatasetStatistics(
        FeatureStats(np.zeros(d), np.ones(d), np.ones(d, bool)),
        FeatureStats(np.zeros(d), np.full(d, 0.01), np.array([True] * 6 + [False])),
    )
    return save_tiny_octo(tmp_path_factory.mktemp("tiny_octo"), stats, delta_mask=(True,) * 6 + (False,))


def make_tiny_ee_checkpoint(folder: Path, action_mean: float = 0.0) -> Path:
    """A demo-style Octo checkpoint (random weights) in the demo's end-effector delta space for the sim arm.

    action_mean: the actions' statistics mean (NaN: every model output becomes NaN).
    """
    import numpy as np

    from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
    from vla_ros.training.train import EE_DELTA_SPACE

    stats = DatasetStatistics(  # 1 mm / 1 mrad steps: every point reachable; the gripper at 0.03 m
        FeatureStats(np.zeros(10), np.ones(10), np.ones(10, bool)),
        FeatureStats(np.array([action_mean] * 6 + [0.03]), np.array([1e-3] * 6 + [1e-4]), np.ones(7, bool)),
    )
    return save_tiny_octo(folder, stats, action_space=EE_DELTA_SPACE, action_dim=7, state_dim=10)


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


def make_tiny_pi0_checkpoint(folder: Path, variant: str = "pi0") -> Path:
    """A π₀ (or π₀.5) checkpoint folder in the real layout (random weights, toy sizes) for the sim arm."""
    from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
    from vla_ros.sim.tabletop import JOINT_NAMES

    return make_tiny_checkpoint(folder, JOINT_NAMES, ("front", "wrist"), horizon=8, dt_s=0.1, variant=variant)


@pytest.fixture(scope="session")
def tiny_pi0_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_pi0_checkpoint(tmp_path_factory.mktemp("tiny_pi0"))


@pytest.fixture(scope="session")
def tiny_pi05_checkpoint(tmp_path_factory) -> Path:
    """π₀.5: adaptive-RMSNorm expert, state in the prompt (openpi layout)."""
    return make_tiny_pi0_checkpoint(tmp_path_factory.mktemp("tiny_pi05"), variant="pi05")
