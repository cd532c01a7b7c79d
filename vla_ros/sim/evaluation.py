"""Closed-loop evaluation of a backend (or the scripted expert) in the sim, without ROS.

Mirrors the ROS pipeline's timing: an observation every `replan_s` seconds, the chunk indexed
by time from the observation, commands interpolated at 100 Hz. Used for fast model selection;
the demo measures the same through the real nodes.
"""

from __future__ import annotations

import numpy as np

from vla_ros.core.plan import Plan
from vla_ros.core.types import ActionChunk, Observation
from vla_ros.sim.expert import ScriptedExpert
from vla_ros.sim.recorder import CONTROL_DT_S
from vla_ros.sim.tabletop import CAMERAS, JOINT_NAMES, TabletopSim, task_for_episode


def run_episode(sim: TabletopSim, policy, seed: int, replan_s: float = 0.3, max_episode_s: float = 8.0) -> bool:
    """`policy(observation) -> ActionChunk`; True if the episode's task succeeds."""
    task = sim.reset(seed, task_for_episode(seed))
    plan = Plan(len(JOINT_NAMES))
    next_obs = 0.0
    while sim.outcome == "running" and sim.time_s < max_episode_s:
        now = sim.time_s
        if now >= next_obs - 1e-9:
            obs = Observation(now, {c: sim.render(c) for c in CAMERAS}, JOINT_NAMES, sim.joint_positions(), task.instruction)
            plan.merge(policy(obs), now, sim.data.ctrl.copy())
            next_obs = now + replan_s
        sim.set_command(plan.sample(now + CONTROL_DT_S))
        sim.advance(CONTROL_DT_S)
    return sim.outcome == "success"


def expert_policy(sim: TabletopSim, dt_s: float = 0.1, horizon: int = 8):
    expert = ScriptedExpert(sim, dt_s, horizon)
    return lambda obs: ActionChunk(obs.stamp_s, dt_s, JOINT_NAMES, expert.chunk())


def success_rate(policy_factory, seeds: list[int]) -> float:
    sim = TabletopSim()
    policy = policy_factory(sim)
    return float(np.mean([run_episode(sim, policy, s) for s in seeds]))
