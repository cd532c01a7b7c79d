"""Closed-loop evaluation of a backend (or the scripted expert) in the sim, without ROS.

The same control path as the nodes: observations go through the PolicyCore (the policy node's loop:
buffer, inference, chunk checks), the robot config's chunk_executor parameters build the
ExecutorCore (plan, blending, jerk limiter, workspace) exactly as the node does
(vla_ros/executor_setup.py), chunks are merged at their observation's stamp and the core ticks at
100 Hz with the measured joints fed back. What differs from the ROS pipeline is only time: an
observation every `replan_s` seconds with zero transport latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vla_ros.backends.base import Backend
from vla_ros.config import RobotConfig, load_robot_config
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import ActionChunk
from vla_ros.executor_setup import executor_from_parameters
from vla_ros.launch_description import executor_parameters
from vla_ros.policy_core import PolicyCore
from vla_ros.sim.expert import ScriptedExpert
from vla_ros.sim.recorder import CONTROL_DT_S
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES, TabletopSim, task_for_episode


def run_episode(
    sim: TabletopSim,
    backend: Backend,
    seed: int,
    robot: RobotConfig | None = None,
    replan_s: float = 0.3,
    max_episode_s: float = 8.0,
    executor_overrides: dict[str, Any] | None = None,
) -> bool:
    """`backend` through the policy core and the executor core; True if the task succeeds."""
    robot = robot or load_robot_config("sim")
    executor = executor_from_parameters({**executor_parameters(robot), **(executor_overrides or {})})
    task = sim.reset(seed, task_for_episode(seed))
    policy = sim_policy(backend, task.instruction, clock=lambda: sim.time_s, period_s=replan_s)
    executor.on_joint_state(0.0, sim.joint_positions())
    executor.activate()

    def deliver(chunk: ActionChunk) -> tuple[float, float]:
        try:
            executor.on_chunk(chunk, sim.time_s)
        except ChunkRejected:
            pass  # counted by the executor core; it holds as the node would
        return 0.0, 0.0

    next_obs = 0.0
    while sim.outcome == "running" and sim.time_s < max_episode_s:
        now = sim.time_s
        executor.on_joint_state(now, sim.joint_positions())
        if now >= next_obs - 1e-9:
            observe(policy, sim, now)
            policy.infer_once(deliver)
            next_obs = now + replan_s
        command = executor.tick(now)
        if command.positions is not None:
            sim.set_command(command.positions)
        sim.advance(CONTROL_DT_S)
    return sim.outcome == "success"


def sim_policy(backend: Backend, instruction: str, clock: Callable[[], float], period_s: float = 0.3) -> PolicyCore:
    """The policy node's core for `backend` on the tabletop sim, on the sim's clock, given the task."""
    params = {"max_observation_age_s": 1.0, "inference_period_s": period_s, "inference_delay_s": 0.0}
    policy = PolicyCore(CAMERAS, JOINT_NAMES, params.__getitem__, clock)
    policy.backend = backend
    policy.reset()
    policy.instruction = instruction
    return policy


def observe(policy: PolicyCore, sim: TabletopSim, now: float) -> None:
    """Every camera's frame and the joint positions at sim time `now` into the policy's observation buffer."""
    for camera in CAMERAS:
        policy.add_image(camera, now, sim.render(camera), now, time.perf_counter())
    policy.buffer.add_joint_state(now, list(JOINT_NAMES), list(sim.joint_positions()))


class ExpertBackend(Backend):
    """The scripted expert as a policy backend: chunks planned from the state of `sim`, this process's sim
    object (it reads no camera). The policy node's equivalent, from the observation alone: backend
    `sim_expert` (vla_ros/backends/sim_expert)."""

    camera_names = ()
    joint_names = JOINT_NAMES

    def __init__(self, sim: TabletopSim, dt_s: float = 0.1, horizon: int = 8):
        self.expert, self.dt_s, self.horizon = ScriptedExpert(sim, dt_s, horizon), dt_s, horizon

    def predict(self, observation, noise=None, prefix=None) -> ActionChunk:
        return ActionChunk(observation.stamp_s, self.dt_s, JOINT_NAMES, self.expert.chunk())


def success_rate(backend_for: Callable[[TabletopSim], Backend], seeds: list[int]) -> float:
    """The success rate over `seeds` of the backend `backend_for(sim)` (e.g. ExpertBackend)."""
    sim = TabletopSim()
    backend = backend_for(sim)
    return float(np.mean([run_episode(sim, backend, s) for s in seeds]))
