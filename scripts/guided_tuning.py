"""Tune guided blending on the demo model without ROS: the sim, the executor core and the policy in one
closed loop on simulated time (so the machine's load does not change the numbers).

    python scripts/guided_tuning.py --delays 0.1 0.2 0.3 --configs temporal_ensemble guided:5:plan \
        guided:5:chunk --episodes 8

The policy side is the nodes' PolicyCore. Like the demo's nodes: an observation is taken, its chunk
arrives `inference + delay (+ up to --jitter)` seconds later; the next observation is taken when that
chunk has arrived (or one period after the last one); in guided mode the prefix is the executor's plan
at the observation (it includes the last chunk, as the policy node waits for that), committed up to the
latest arrival. A config is a blend mode, or
`guided:<max_guidance>:<guidance_overlap>` (the Octo settings of those names). Prints per
config and delay the success rate, the mean episode length and the switch jumps at a running plan (the
executor's `last_switch_jump`: how far the chunk moved what the plan asks 0.1 s ahead).
"""

from __future__ import annotations

import argparse

import numpy as np

from vla_ros.backends.base import load_backend
from vla_ros.benchmarks.executor_tick import make_core
from vla_ros.core.types import PlanPrefix
from vla_ros.evaluation import observe, sim_policy
from vla_ros.paths import resolve_package_path
from vla_ros.sim.tabletop import JOINT_NAMES, TabletopSim, task_for_episode

PERIOD_S = 0.3  # the sim robot's inference_period_s
INFERENCE_S = 0.1  # simulated model time (the demo model's p50 on this machine)


def episode(backend, seed: int, delay_s: float, blend: str, jitter_s: float, rng, max_s: float = 8.0):
    """One closed-loop episode: (success, switch jumps at a running plan (rad), length (s))."""
    sim = TabletopSim(image_size=(64, 64))
    task = sim.reset(seed, task_for_episode(seed))
    core = make_core(blend)
    policy = sim_policy(backend, task.instruction, clock=lambda: tick * dt, period_s=PERIOD_S)
    dt, latency = 0.01, INFERENCE_S + delay_s
    core.on_joint_state(0.0, sim.joint_positions())
    pending, jumps, next_obs_s, tick = [], [], 0.0, 0
    while sim.outcome == "running" and tick * dt < max_s:
        now = tick * dt
        while pending and pending[0][0] <= now + 1e-9:
            running = not core.plan.empty
            core.on_chunk(pending.pop(0)[1], now)
            if running:
                jumps.append(core.last_switch_jump)
        if now >= next_obs_s - 1e-9 and not pending:
            observe(policy, sim, now)
            if blend == "guided" and not core.plan.empty:  # the plan at the observation, as the node receives it
                times, positions = core.plan.ahead(now)
                policy.set_prefix(now, PlanPrefix(times, positions, JOINT_NAMES, now), float(times[-1]))
            else:
                policy.set_prefix(now, None, None)
            policy.snapshot_to_publish.add(latency + jitter_s)  # committed up to the latest arrival
            arrival = now + latency + rng.uniform(0.0, jitter_s)
            policy.infer_once(lambda chunk, at=arrival: pending.append((at, chunk)) or (0.0, 0.0))
            next_obs_s = max(now + PERIOD_S, arrival)
        core.on_joint_state(now, sim.joint_positions())
        command = core.tick(now)
        if command.positions is not None:
            sim.set_command(command.positions)
        sim.advance(dt)
        tick += 1
    sim.close()
    return sim.outcome == "success", jumps, tick * dt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--configs", nargs="+", default=["temporal_ensemble", "guided:5:plan", "guided:5:chunk"])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--jitter", type=float, default=0.05, help="latency jitter, uniform (s)")
    args = parser.parse_args(argv)
    model = resolve_package_path("models/demo")
    for config in args.configs:
        blend, *options = config.split(":")
        settings = {"max_guidance": float(options[0])} if options else {}
        if len(options) > 1:
            settings["guidance_overlap"] = options[1]
        backend = load_backend("octo", model, settings)
        for delay in args.delays:
            rng = np.random.default_rng(0)
            runs = []
            for seed in range(args.first_seed, args.first_seed + args.episodes):
                backend.generator.manual_seed(seed)
                runs.append(episode(backend, seed, delay, blend, args.jitter, rng))
            jumps = np.concatenate([np.asarray(r[1]) for r in runs])
            print(
                f"{config} delay {delay * 1e3:.0f} ms: success {np.mean([r[0] for r in runs]):.2f}, "
                f"episode {np.mean([r[2] for r in runs]):.2f} s, {jumps.size} switches at a running plan: "
                f"jump p50 {np.median(jumps):.4f} / mean {jumps.mean():.4f} / p90 {np.percentile(jumps, 90):.4f} / "
                f"max {jumps.max():.4f} rad",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
