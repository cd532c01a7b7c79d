"""A tiny SmolVLA (LeRobot layout) through the real nodes on the SO-101 URDF sim: sim robot, policy node,
chunk executor and lifecycle manager as processes over DDS, guided blending."""

from __future__ import annotations

import numpy as np
import pytest
from harness import wait_until


@pytest.fixture(scope="module")
def so101_smolvla(tmp_path_factory):
    from vla_ros.backends.smolvla.tiny import make_tiny_checkpoint
    from vla_ros.config import load_robot_config

    robot = load_robot_config("so101")
    cameras = tuple(c.name for c in robot.cameras)
    folder = tmp_path_factory.mktemp("smolvla_so101") / "ckpt"
    return make_tiny_checkpoint(folder, robot.joint_names, cameras, horizon=8, dt_s=0.1, home=robot.home)


def test_a_tiny_smolvla_drives_the_so101_sim_through_the_real_nodes(ros_env, ros_node, so101_smolvla, tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from vla_ros.bringup import Bringup
    from vla_ros.config import load_robot_config
    from vla_ros.launch_description import node_specs

    cfg = load_robot_config("so101")
    overrides = {
        "vla_policy": {"instruction": "reach the red cube", "inference_period_s": 0.2},
        "vla_chunk_executor": {"blend_mode": "guided"},
        "vla_sim_robot": {"image_width": 64, "image_height": 48, "camera_rate_hz": 10.0},
    }
    specs = node_specs("so101", backend="smolvla", model_path=str(so101_smolvla), use_sim=True, overrides=overrides)
    bringup = Bringup(specs, log_dir=tmp_path / "logs", env=ros_env)
    chunks, statuses, states = [], [], []
    ros_node.create_subscription(JointTrajectory, "action_chunk", chunks.append, 50)
    ros_node.create_subscription(DiagnosticStatus, "/vla_chunk_executor/status", statuses.append, 50)
    ros_node.create_subscription(JointState, cfg.topics["joint_states"], states.append, 10)
    bringup.start()
    try:
        ok = wait_until(lambda: len(chunks) > 3 and any(s.message == "tracking" for s in statuses), 90.0)
        log = (
            (tmp_path / "logs" / "vla_policy.log").read_text()
            if (tmp_path / "logs" / "vla_policy.log").exists()
            else ""
        )
        assert ok, f"chunks {len(chunks)}, dead {bringup.dead()}:\n{log[-3000:]}"
        msg = chunks[-1]
        assert tuple(msg.joint_names) == cfg.joint_names and len(msg.points) == 8
        points = np.array([p.positions for p in msg.points])
        assert np.isfinite(points).all() and np.abs(points - np.array(cfg.home)).max() < 0.5  # around home (stats)
        assert "smolvla" in log.lower() and bringup.dead() == {}
        start = np.array(states[0].position)
        assert wait_until(lambda: np.abs(np.array(states[-1].position) - start).max() > 1e-3, 10.0)  # the arm moves
    finally:
        bringup.stop()
