"""Demonstration recorder: scripted-expert episodes saved as one `.npz` training set.

Each sample is taken every `dt_s` seconds of an episode: camera images (resized to the model
input size), joint positions (D,), and the expert's next `horizon` joint targets (H, D) as the
label. DART-style noise is added to the targets the arm actually executes (not to the labels),
so the data covers the small mistakes a learned policy makes and how the expert recovers.
Every cube layout is recorded once per task: the instruction is then the only thing that
explains why the actions differ, which is what makes the policy listen to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.core.images import resize_rgb
from vla_ros.sim.expert import ScriptedExpert
from vla_ros.sim.tabletop import CAMERAS, TASKS, TabletopSim

CONTROL_DT_S = 0.01  # commands are interpolated at 100 Hz, as the executor does


@dataclass(frozen=True)
class RecorderSettings:
    episodes: int = 1000
    first_seed: int = 100_000  # training seeds; evaluation uses seeds below this
    dt_s: float = 0.1
    horizon: int = 8
    image_size: int = 64
    noise_rad: float = 0.05  # std of the executed-target perturbation (DART)
    noise_prob: float = 0.7  # fraction of episodes with noise
    max_episode_s: float = 6.0
    extra_steps_after_success: int = 3


def execute_target(sim: TabletopSim, target: np.ndarray, duration_s: float) -> None:
    """Move the commanded targets linearly to `target` over `duration_s` at 100 Hz."""
    start = sim.data.ctrl.copy()
    n = max(1, round(duration_s / CONTROL_DT_S))
    for i in range(1, n + 1):
        sim.set_command(start + (target - start) * i / n)
        sim.advance(CONTROL_DT_S)


def record(settings: RecorderSettings, out: Path, log=print) -> dict:
    """Record `settings.episodes` episodes into `out` (.npz); return a summary."""
    sim = TabletopSim()
    expert = ScriptedExpert(sim, settings.dt_s, settings.horizon)
    rng = np.random.default_rng(settings.first_seed)
    data = {f"image_{c}": [] for c in CAMERAS} | {"state": [], "actions": [], "task": [], "episode": []}
    successes = 0
    for ep in range(settings.episodes):
        seed = settings.first_seed + ep // len(TASKS)
        task = TASKS[ep % len(TASKS)]
        sim.reset(seed, task)
        noisy = rng.random() < settings.noise_prob
        extra = settings.extra_steps_after_success
        while sim.time_s < settings.max_episode_s and extra >= 0:
            chunk = expert.chunk()
            for c in CAMERAS:
                data[f"image_{c}"].append(resize_rgb(sim.render(c), settings.image_size, settings.image_size))
            data["state"].append(sim.joint_positions())
            data["actions"].append(chunk)
            data["task"].append(TASKS.index(task))
            data["episode"].append(ep)
            target = chunk[0].copy()
            if noisy:
                target[:6] += rng.normal(0, settings.noise_rad, 6)
            execute_target(sim, target, settings.dt_s)
            if sim.outcome != "running":
                extra -= 1
        successes += sim.outcome == "success"
        if (ep + 1) % 50 == 0:
            log(f"recorded {ep + 1}/{settings.episodes} episodes, {len(data['state'])} samples")
    arrays = {k: np.asarray(v) for k, v in data.items()}
    arrays["instructions"] = np.array([t.instruction for t in TASKS])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    summary = {
        "episodes": settings.episodes,
        "samples": len(data["state"]),
        "expert_success_rate": successes / settings.episodes,
    }
    log(f"saved {out}: {summary}")
    return summary
