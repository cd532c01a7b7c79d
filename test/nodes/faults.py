"""Shared helpers of the fault tests: /diagnostics values, a chunk publisher, commands within limits."""

from __future__ import annotations

import numpy as np
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.config import load_robot_config
from vla_ros.nodes.conversions import s_to_duration

ROBOT = load_robot_config("sim")
HOME = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])


def diagnostics(peer, name: str) -> dict[str, str]:
    """The newest /diagnostics values of the status named `name` (e.g. 'vla_policy: policy'), or {}."""
    for msg in reversed(list(peer.diagnostics)):
        for status in msg.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values} | {"message": status.message}
    return {}


def trajectory(peer, positions, dt_s: float = 0.1, stamp=None, frame_id: str = "") -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(ROBOT.joint_names))
    msg.header.stamp = stamp or peer.now_msg()
    msg.header.frame_id = frame_id
    msg.points = [
        JointTrajectoryPoint(positions=list(map(float, p)), time_from_start=s_to_duration(dt_s * (i + 1)))
        for i, p in enumerate(positions)
    ]
    return msg


def assert_within_limits(commands: list[tuple[float, np.ndarray]], period_s: float = 0.01, slack: float = 1.6) -> None:
    """Every command inside the position limits, and no step faster than max_velocity over the time it covers:
    the control period, or the gap since the previous command's arrival when that is longer (a late tick
    moves on by the time that passed). `slack` is for delivery jitter: commands are timed by their arrival."""
    t = np.array([t for t, _ in commands])
    q = np.array([c for _, c in commands])
    assert len(q) > 2
    assert np.all(q >= ROBOT.limits.min_position - 1e-9) and np.all(q <= ROBOT.limits.max_position + 1e-9)
    steps = np.abs(np.diff(q, axis=0))
    covered_s = np.maximum(np.diff(t), period_s)[:, None]
    assert np.all(steps <= ROBOT.limits.max_velocity * covered_s * slack + 1e-9), (
        f"a command step of {steps.max():.4f} rad"
    )
