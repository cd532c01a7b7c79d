"""Closed-loop evaluation of a backend (or the scripted expert) in the sim, without ROS.

The same control path as the nodes: the robot config's chunk_executor parameters build the
ExecutorCore (plan, blending, jerk limiter, workspace) exactly as the node does
(vla_ros/executor_setup.py), chunks are merged at their observation's stamp and the core ticks at
100 Hz with the measured joints fed back. What differs from the ROS pipeline is only time: an
observation every `replan_s` seconds with zero transport latency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vla_ros.config import RobotConfig, load_robot_config
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import ActionChunk, Observation
from vla_ros.executor_setup import executor_from_parameters
from vla_ros.launch_description import executor_parameters
from vla_ros.sim.expert import ScriptedExpert
from vla_ros.sim.recorder import CONTROL_DT_S
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES, TabletopSim, task_for_episode

Policy = Callable[[Observation], ActionChunk]


def run_episode(
    sim: TabletopSim,
    policy: Policy,
    seed: int,
    robot: RobotConfig | None = None,
    replan_s: float = 0.3,
    max_episode_s: float = 8.0,
    executor_overrides: dict[str, Any] | None = None,
) -> bool:
    """`policy(observation) -> ActionChunk` through the executor core; True if the task succeeds."""
    robot = robot or load_robot_config("sim")
    core = executor_from_parameters({**executor_parameters(robot), **(executor_overrides or {})})
    task = sim.reset(seed, task_for_episode(seed))
    core.on_joint_state(0.0, sim.joint_positions())
    core.activate()
    next_obs = 0.0
    while sim.outcome == "running" and sim.time_s < max_episode_s:
        now = sim.time_s
        core.on_joint_state(now, sim.joint_positions())
        if now >= next_obs - 1e-9:
            obs = Observation(
                now, {c: sim.render(c) for c in CAMERAS}, JOINT_NAMES, sim.joint_positions(), task.instruction
            )
            try:
                core.on_chunk(policy(obs), now)
            except ChunkRejected:
                pass  # counted by the core; the executor holds as the node would
            next_obs = now + replan_s
        command = core.tick(now)
        if command.positions is not None:
            sim.set_command(command.positions)
        sim.advance(CONTROL_DT_S)
    return sim.outcome == "success"


def expert_policy(sim: TabletopSim, dt_s: float = 0.1, horizon: int = 8):
    expert = ScriptedExpert(sim, dt_s, horizon)
    return lambda obs: ActionChunk(obs.stamp_s, dt_s, JOINT_NAMES, expert.chunk())


def success_rate(policy_factory, seeds: list[int]) -> float:
    sim = TabletopSim()
    policy = policy_factory(sim)
    return float(np.mean([run_episode(sim, policy, s) for s in seeds]))
