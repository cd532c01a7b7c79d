"""Guided blending removes the discontinuity at chunk switches: replace vs. guided through the executor."""

import numpy as np

from vla_ros.backends.base import load_backend
from vla_ros.config import load_robot_config
from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix
from vla_ros.paths import resolve_package_path
from vla_ros.sim.tabletop import HOME_Q, JOINT_NAMES

DT = 0.01


def switch(blend: str, checkpoint, seed: int) -> tuple[float, float]:
    """Track chunk 1 for 0.3 s, then chunk 2 (other noise) arrives: (switch jump rad, mean abs jerk
    rad/s^3 and mean deviation of the command from what the chunk asks (its points interpolated) rad,
    both over the next 0.3 s)."""
    backend = load_backend("octo", checkpoint)
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in backend.camera_names}
    core = ExecutorCore(load_robot_config("sim").limits, ExecutorSettings(blend=blend))
    core.activate()
    core.on_joint_state(0.0, HOME_Q)
    obs = Observation(0.0, images, JOINT_NAMES, HOME_Q, "reach the red cube")
    core.on_chunk(backend.predict(obs, rng.standard_normal((backend.horizon, 7))), 0.0)
    t = 0.0
    for _ in range(30):
        t += DT
        core.on_joint_state(t, core.limiter.position)
        core.tick(t)
    obs2 = Observation(t, images, JOINT_NAMES, core.limiter.position.copy(), "reach the red cube")
    ahead = core.plan_ahead(t)
    prefix = PlanPrefix(*ahead, JOINT_NAMES, committed_until_s=t + 0.05) if blend == "guided" else None
    chunk: ActionChunk = backend.predict(obs2, rng.standard_normal((backend.horizon, 7)), prefix)
    core.on_chunk(chunk, t)
    accelerations, deviation = [], []
    for _ in range(30):
        t += DT
        core.on_joint_state(t, core.limiter.position)
        command = core.tick(t).positions
        accelerations.append(core.limiter.acceleration.copy())
        deviation.append(np.abs(command - core.plan.interpolated(t)).max())
    return core.last_switch_jump, float(np.abs(np.diff(accelerations, axis=0) / DT).mean()), float(np.mean(deviation))


def test_guided_switches_jump_less_than_replace():
    """The bundled demo model, random images: the same two noises, with and without the plan prefix."""
    demo = resolve_package_path("models/demo")
    replace = np.array([switch("replace", demo, s) for s in range(5)])
    guided = np.array([switch("guided", demo, s) for s in range(5)])
    print(
        "switch jump (rad) / mean abs jerk (rad/s^3) / deviation (rad), replace:",
        replace.mean(0),
        "guided:",
        guided.mean(0),
    )
    assert guided[:, 0].mean() < 0.5 * replace[:, 0].mean()
    # the plan is smoothed to keep the limits, so a jump costs not jerk but following the chunk
    assert guided[:, 2].mean() < 0.5 * replace[:, 2].mean()
    assert guided[:, 1].max() < 0.25 * load_robot_config("sim").limits.max_jerk[:6].min()  # the arm joints
